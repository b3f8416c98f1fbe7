import numpy as np
import torch

from genlab.data.faces import ATTRIBUTES
from genlab.metrics.prompt_following import attribute_combinations, prompt_following


class FakeJudge:
    """Sees what it is told: is_face and predicted attributes fixed in advance."""

    def __init__(self, face: np.ndarray, pred: np.ndarray):
        self.face, self.pred = face, pred

    def judge(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        assert len(images) == len(self.face)
        return self.face, self.pred


def test_combinations_cover_every_attribute_combination_n_per_times():
    rows = attribute_combinations(3)
    assert rows.shape == (3 * 2 ** len(ATTRIBUTES), len(ATTRIBUTES))
    assert len({tuple(r) for r in rows}) == 2 ** len(ATTRIBUTES)
    assert (rows[:3] == rows[0]).all()


def test_a_sample_that_is_not_a_face_follows_nothing():
    wanted = attribute_combinations(1)
    face = np.ones(len(wanted), dtype=bool)
    face[0] = False
    out = prompt_following(torch.zeros(len(wanted), 3, 8, 8), wanted, FakeJudge(face, wanted.copy()))
    assert out["follow_all"] == out["face_rate"] == (len(wanted) - 1) / len(wanted)
    wrong = wanted.copy()
    wrong[:, 0] = 1 - wrong[:, 0]
    out = prompt_following(torch.zeros(len(wanted), 3, 8, 8), wanted, FakeJudge(face, wrong))
    assert out[f"follow_{ATTRIBUTES[0]}"] == 0.0 and out["follow_all"] == 0.0
    assert out[f"follow_{ATTRIBUTES[1]}"] == (len(wanted) - 1) / len(wanted)
