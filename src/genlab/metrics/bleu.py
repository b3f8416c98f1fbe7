"""Translation quality through sacreBLEU: corpus BLEU and chrF on detokenized text.

sacreBLEU tokenizes the references and hypotheses itself (13a, the WMT standard), so scores
are comparable with published ones; its signature records exactly how a score was computed
and belongs next to every reported number.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("BLEU and chrF need the sacrebleu package: pip install sacrebleu") from None
    return sacrebleu


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """(BLEU in 0..100, sacreBLEU signature) of one reference per sentence."""
    _check(hypotheses, references)
    metric = _sacrebleu().metrics.BLEU()
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(metric.get_signature())


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """(chrF in 0..100, sacreBLEU signature): character n-gram F-score, kinder to morphology than BLEU."""
    _check(hypotheses, references)
    metric = _sacrebleu().metrics.CHRF()
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(metric.get_signature())
