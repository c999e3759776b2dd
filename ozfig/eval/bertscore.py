"""BERTScore of answers against references, through the `bert-score` package (`ozfig[eval]`).

torch, transformers and bert_score are imported here, inside the functions: nothing heavy
is loaded unless `ozfig eval answers` runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import EvalError, MissingExtraError

log = logging.getLogger(__name__)

SCORE_SLICE = 64  # pairs scored per call, for the progress bar


@dataclass(frozen=True)
class BertScores:
    precision: list[float]
    recall: list[float]
    f1: list[float]
    encoder: str
    num_layers: int
    idf: bool
    rescaled: bool

    @staticmethod
    def _mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    def summary(self) -> dict[str, object]:
        return {
            "precision": self._mean(self.precision),
            "recall": self._mean(self.recall),
            "f1": self._mean(self.f1),
            "encoder": self.encoder,
            "num_layers": self.num_layers,
            "idf": self.idf,
            "rescaled_with_baseline": self.rescaled,
        }


def _bert_score() -> Any:
    try:
        import bert_score
    except ImportError as exc:
        raise MissingExtraError(
            f"BERTScore needs the optional dependencies of ozfig[eval] ({exc.name} is missing): "
            "pip install 'ozfig[eval]'"
        ) from None
    return bert_score


def _quiet_transformers() -> None:
    """No weight-loading bars or warnings from transformers: ozfig shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def default_encoder() -> str:
    """The encoder BERTScore itself uses for English (roberta-large)."""
    return str(_bert_score().utils.lang2model["en"])


def encoder_layers(encoder: str) -> int:
    """BERTScore's tuned layer for a known encoder; otherwise the encoder's last layer."""
    layers = _bert_score().utils.model2layers.get(encoder)
    if layers is not None:
        return int(layers)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(encoder)
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot load the BERTScore encoder {encoder!r}: {exc}") from None
    layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(layers, int):
        raise EvalError(f"cannot tell how many layers {encoder!r} has: pass --encoder-layers")
    log.info("%s is not in BERTScore's table of tuned layers; using its last layer, %d", encoder, layers)
    return layers


def bert_scores(
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    encoder: str | None = None,
    num_layers: int | None = None,
    idf: bool = False,
    rescale_with_baseline: bool = False,
    batch_size: int = 64,
    device: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BertScores:
    """P/R/F1 of each candidate against its reference, as `bert_score.score` computes them."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates for {len(references)} references")
    bs = _bert_score()
    encoder = encoder or default_encoder()
    layers = num_layers if num_layers is not None else encoder_layers(encoder)
    if rescale_with_baseline:
        baseline = os.path.join(os.path.dirname(bs.__file__), "rescale_baseline", "en", f"{encoder}.tsv")
        if not os.path.isfile(baseline):
            raise EvalError(
                f"BERTScore has no English baseline for {encoder!r}; drop --rescale-with-baseline"
            )
    log.info("BERTScore with %s, layer %d, idf %s", encoder, layers, idf)
    _quiet_transformers()
    try:
        scorer = bs.BERTScorer(
            model_type=encoder,
            num_layers=layers,
            batch_size=batch_size,
            idf=idf,
            idf_sents=list(references) if idf else None,
            device=device,
            lang="en" if rescale_with_baseline else None,
            rescale_with_baseline=rescale_with_baseline,
        )
    except OSError as exc:
        raise EvalError(f"cannot load the BERTScore encoder {encoder!r}: {exc}") from None
    precision: list[float] = []
    recall: list[float] = []
    f1: list[float] = []
    for s in range(0, len(candidates), SCORE_SLICE):
        p, r, f = scorer.score(list(candidates[s : s + SCORE_SLICE]), list(references[s : s + SCORE_SLICE]))
        precision += [float(x) for x in p]
        recall += [float(x) for x in r]
        f1 += [float(x) for x in f]
        if on_progress is not None:
            on_progress(len(p))
    return BertScores(
        precision=precision,
        recall=recall,
        f1=f1,
        encoder=encoder,
        num_layers=layers,
        idf=idf,
        rescaled=rescale_with_baseline,
    )
