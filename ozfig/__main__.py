from ozfig.cli import main

raise SystemExit(main())
