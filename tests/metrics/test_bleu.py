"""sacreBLEU and chrF wrappers."""
import pytest

from genlab.metrics.bleu import corpus_bleu, corpus_chrf

REFS = ["Un homme fait du vélo dans le parc .", "Deux chiens courent sur la plage ."]


def test_identical_text_scores_100_and_signatures_are_recorded():
    bleu, sig = corpus_bleu(REFS, REFS)
    chrf, chrf_sig = corpus_chrf(REFS, REFS)
    assert bleu == pytest.approx(100.0) and chrf == pytest.approx(100.0)
    assert "nrefs:1" in sig and "tok:13a" in sig and "version:" in sig
    assert "nc:6" in chrf_sig


def test_scores_order_hypotheses_by_quality():
    good = ["Un homme fait du vélo dans le jardin .", "Deux chiens courent sur la plage ."]
    bad = ["Une femme mange .", "Le ciel ."]
    assert corpus_bleu(good, REFS)[0] > corpus_bleu(bad, REFS)[0] >= 0
    assert corpus_chrf(good, REFS)[0] > corpus_chrf(bad, REFS)[0]
    with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
        corpus_bleu(good[:1], REFS)
