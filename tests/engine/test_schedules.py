import math

from genlab.engine.schedules import lr_multiplier


def test_cosine_warmup_then_decay():
    f = lr_multiplier("cosine", total_steps=100, warmup_steps=10, min_ratio=0.1)
    assert f(0) == 0.1 and f(9) == 1.0
    assert math.isclose(f(100), 0.1) and f(50) < f(20)


def test_noam_peaks_at_warmup():
    f = lr_multiplier("noam", total_steps=10_000, warmup_steps=400, d_model=512)
    values = [f(s) for s in range(2000)]
    assert max(range(2000), key=values.__getitem__) == 399
    assert math.isclose(f(399), 512 ** -0.5 * 400 ** -0.5)


def test_constant():
    assert lr_multiplier("constant", 10)(5) == 1.0
