"""cyclegan: unpaired translation between two image folders. Tiny sizes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import genlab
from genlab.errors import ConfigError

pytestmark = pytest.mark.usefixtures("quick_feature_nets")


def test_cyclegan_folder_domains_and_translation(tmp_path, capsys, image_folder):
    data = image_folder(tmp_path / "ab", classes=("A", "B"), n=40)
    run = genlab.train("cyclegan", data=data, out=tmp_path / "run", progress=False,
                       overrides={"device": "cpu", "max_steps": 3, "batch_size": 2, "image_size": 16, "g_width": 4,
                                  "n_blocks": 1, "d_width": 4, "d_layers": 2, "pool_size": 3, "save_every": 0,
                                  "eval_samples": 4})
    assert "skipped 1 unreadable" in capsys.readouterr().err
    m = run.evaluate()
    r = run.recipe
    with r.eval_mode():   # cycle_l1 is the round trip's mean absolute error in 0-1 pixel units
        src = r.val_a[:4].float() / 127.5 - 1 if r.val_a.dtype == torch.uint8 else r.val_a[:4]
        _, rec = r.translate(src, "AtoB")
    assert m["cycle_l1_AtoB"] == pytest.approx(float((rec - src).abs().mean() / 2), rel=1e-4)
    assert m["n_fake_AtoB"] == 4 and m["fid_floor_AtoB"] < m["fid_AtoB"]
    paths = run.sample(out=tmp_path / "s", input=str(data / "B"), direction="BtoA", n=3)
    names = [Path(p).relative_to(tmp_path / "s").as_posix() for p in paths]
    assert names == ["round-trip-BtoA.png", "round-trip-BtoA-native.png", "translated-BtoA.png",
                     "translated-BtoA-native.png", "translated/00000.png", "translated/00001.png",
                     "translated/00002.png"]
    strips = run.sample(n=2).parts["round_trip"]
    assert strips.ncol == 3 and strips.images.shape == (6, 16, 16, 3) and strips.col_labels[0] == "input (A)"
    with pytest.raises(ConfigError):
        run.sample(direction="sideways")
