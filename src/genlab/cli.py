"""The `genlab` command: list | train | sample | eval | info | import (a thin layer over genlab.api)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import api
from ._version import __version__
from .engine.config import parse_set
from .errors import GenlabError, Interrupted


class UsageError(GenlabError):
    """A command line argparse cannot parse (exit status 1 like every other error)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `genlab: error:` line and exit status 1, not a usage dump and 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="genlab", description="Train, sample, evaluate and serve generative models.")
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list recipes and their default datasets")

    t = sub.add_parser("train", help="train a recipe into a run directory")
    t.add_argument("recipe")
    t.add_argument("--data", help="your data (file or folder); default: the recipe's embedded dataset")
    t.add_argument("--config", help="TOML or YAML file of config keys")
    t.add_argument("--preset", help="a named preset of the recipe (e.g. book)")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/RECIPE[-N])")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="write samples of a trained run")
    s.add_argument("run")
    s.add_argument("--n", type=int, help="number of samples")
    s.add_argument("--seed", type=int, help="sampling seed")
    s.add_argument("--out", help="output folder (default: RUN/samples/cli)")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe-specific sampling option (repeatable)")
    s.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint to use")

    e = sub.add_parser("eval", help="evaluate a run on held-out data")
    e.add_argument("run")
    e.add_argument("--which", choices=["best", "last"], default="best")
    e.add_argument("--json", action="store_true", help="print JSON only")

    i = sub.add_parser("info", help="describe a run directory")
    i.add_argument("run")

    m = sub.add_parser("import", help="import a published checkpoint as a run directory (gpt2)")
    m.add_argument("kind", choices=["gpt2"], help="checkpoint family")
    m.add_argument("src", help="checkpoint folder (Hugging Face layout: config.json, weights, tokenizer files)")
    m.add_argument("--out", help="run directory to create (default: runs/<folder name>)")
    return p


def _print_metrics(metrics: dict) -> None:
    for k, v in metrics.items():
        print(f"{k:>24s}  {v:.6g}" if isinstance(v, float) else f"{k:>24s}  {v}")


def run_command(args: argparse.Namespace) -> int:
    if args.command == "list":
        rows = api.list_recipes()
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            presets = f" [presets: {r['presets']}]" if r["presets"] else ""
            print(f"{r['name']:<{width}}  {r['summary']} (default data: {r['default_data']}){presets}")
        return 0
    if args.command == "train":
        run = api.train(args.recipe, data=args.data, config=args.config, overrides=args.sets, out=args.out,
                         resume=args.resume, preset=args.preset, progress=not args.no_progress)
        if run.recipe.dist.is_main:
            rows = [r for r in api.RunDir(run.path).read_metrics() if r.get("kind") == "eval"]
            print(f"run: {run.path}  (step {run.result.get('step')}, {run.result.get('seconds', 0):.1f} s"
                  f"{', stopped early' if run.result.get('stopped_early') else ''})")
            if rows:
                _print_metrics({k: v for k, v in rows[-1].items() if k not in ("kind",)})
            best = run.path / "best" / "metrics.json"
            if best.is_file():  # early stopping kept a better checkpoint: genlab.load uses it
                print("best checkpoint (used by sample/eval):")
                _print_metrics(json.loads(best.read_text()))
            for path in run.result.get("samples", [])[:10]:
                print(f"sample: {path}")
        return 0
    if args.command == "sample":
        run = api.load(args.run, which=args.which)
        options = parse_set(args.sets)
        if args.n is not None:
            options["n"] = args.n
        if args.seed is not None:
            options["seed"] = args.seed
        out = Path(args.out) if args.out else run.path / "samples" / "cli"
        if out.exists() and not out.is_dir():
            raise GenlabError(f"--out {out} is a file, not a folder for samples")
        for path in run.sample(out=out, **options):
            print(path)
        return 0
    if args.command == "eval":
        run = api.load(args.run, which=args.which)
        metrics = run.evaluate()
        print(json.dumps(metrics)) if args.json else _print_metrics(metrics)
        return 0
    if args.command == "import":
        out = Path(args.out) if args.out else Path("runs") / Path(args.src).resolve().name
        path = api.import_gpt2(args.src, out)
        print(f"run: {path}  (sample it: genlab sample {path} --set prompt=\"Hello\")")
        return 0
    if args.command == "info":
        info = api.load(args.run).info()
        print(json.dumps(info, indent=1, default=str))
        return 0
    return 2


def _out_of_memory(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text))


def main(argv: list[str] | None = None) -> int:
    """Every error a user can cause ends here as one line on stderr and exit status 1
    (130 for Ctrl-C); anything else is a bug in genlab and keeps its traceback."""
    try:
        return run_command(_parser().parse_args(argv))
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"genlab: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only or vanished folder: the previous files are kept
        where = f": {e.filename}" if e.filename else ""
        print(f"genlab: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        print("genlab: error: out of memory (try a smaller batch_size, model or --n; nothing saved was changed)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
