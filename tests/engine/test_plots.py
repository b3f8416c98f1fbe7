"""plots/metrics.png: what becomes a panel, what a reference line, what is left out."""
from PIL import Image

from genlab.engine.plots import panels, plot_metrics

ROWS = [{"step": 10, "kind": "train", "loss": 2.0, "lr": 1e-3},
        {"step": 20, "kind": "train", "loss": 1.0, "lr": 1e-3},
        {"step": 20, "kind": "eval", "accuracy": 0.9, "majority_baseline": 0.1, "n_test": 359.0,
         "fid": 80.0, "fid_untrained": 300.0}]


def test_constants_counts_and_baselines_are_not_panels():
    series, baselines = panels(ROWS)
    assert set(series) == {"train/loss", "eval/accuracy", "eval/fid"}   # no constant lr, no n_test
    assert baselines == {"eval/accuracy": ("majority_baseline", 0.1), "eval/fid": ("fid_untrained", 300.0)}
    changing = panels(ROWS + [{"step": 30, "kind": "train", "loss": 0.5, "lr": 5e-4}])[0]
    assert changing["train/lr"] == ([10, 20, 30], [1e-3, 1e-3, 5e-4])   # a schedule is a curve


def test_plot_writes_a_png_with_a_title(tmp_path):
    path = plot_metrics(ROWS, tmp_path / "plots" / "metrics.png", title="cgan - run")
    with Image.open(path) as im:
        assert im.size[0] > 600 and im.size[1] > 200
    assert plot_metrics([{"step": 1, "kind": "eval", "n_test": 5.0}], tmp_path / "none.png") is None
