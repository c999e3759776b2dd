"""Token pieces are right when many threads ask at once (the event loop detokenizes while the engine decodes)."""

from __future__ import annotations

import threading

from ozfig.llama.model import LlamaModel


def test_pieces_from_many_threads_are_right(model_path) -> None:
    model = LlamaModel(str(model_path))
    try:
        tokens = range(3000)
        expected = {t: model.piece(t) for t in tokens}
        wrong: list[int] = []

        def work(offset: int) -> None:
            for _ in range(3):
                for i in tokens:
                    t = (i + offset) % len(tokens)
                    model._piece_cache.pop(t, None)  # make every call reach llama.cpp
                    if model.piece(t) != expected[t]:
                        wrong.append(t)

        threads = [threading.Thread(target=work, args=(k * 97,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []
    finally:
        model.close()
