"""The `genlab` command: list | keys | train | sample | eval | average | info | import | serve | agent (a thin layer
over genlab.api, genlab.serve and genlab.agent).

torch and the recipes are imported only by the commands that need them, so `genlab --help`,
`--version`, `list` and `keys` answer at once.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ._version import __version__
from .engine.config import parse_set
from .errors import ConfigError, GenlabError, Interrupted


class UsageError(GenlabError):
    """A command line argparse cannot parse (exit status 1 like every other error)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `genlab: error:` line and exit status 1, not a usage dump and 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see: {self.prog} --help)")


class _TrainHelp(argparse.Action):
    """`genlab train RECIPE --help`: the usual help, then every key of RECIPE."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show this help (with RECIPE: also every config key of the recipe) and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        recipe = getattr(namespace, "recipe", None)
        if recipe:
            try:
                print("\n" + _keys_text(recipe))
            except GenlabError as e:
                print(f"genlab: error: {e}", file=sys.stderr)
                parser.exit(1)
        parser.exit()


def _sets(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--set", dest="sets", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help=f"{help}; several at once (--set a=1 b=2) or repeated")


def _weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="float32", metavar="float32|float16",
                   help="language models: float16 keeps the linear layers' weights in half the bytes, for faster "
                        "decoding of one sequence at a time (see BENCHMARKS.md); default float32")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="genlab", description="Train, sample, evaluate and serve generative models.")
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list recipes and their default datasets")

    k = sub.add_parser("keys", help="every config key of a recipe (type, default, description) and its presets")
    k.add_argument("recipe")

    t = sub.add_parser("train", help="train a recipe into a run directory", add_help=False)
    t.add_argument("-h", "--help", action=_TrainHelp)
    t.add_argument("recipe")
    t.add_argument("--data", help="your data (file or folder); default: the recipe's embedded dataset")
    t.add_argument("--config", help="TOML or YAML file of config keys")
    t.add_argument("--preset", help="a named preset of the recipe (e.g. book)")
    _sets(t, "override a config key (see: genlab keys RECIPE)")
    t.add_argument("--out", help="run directory (default: runs/RECIPE-NNN, the next free number)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="print (text) and write samples of a trained run")
    s.add_argument("run")
    s.add_argument("--n", type=int, help="number of samples")
    s.add_argument("--seed", type=int, help="sampling seed")
    s.add_argument("--out", help="output folder (default: RUN/samples/cli-NNN, the next free number)")
    s.add_argument("--force", action="store_true", help="write into --out even if it already holds files")
    _sets(s, "a sampling option (see: genlab keys RECIPE)")
    s.add_argument("--stream", action="store_true",
                   help="text recipes: print one sample as it is generated (writes no files)")
    s.add_argument("--which", default="best", metavar="best|last|averaged",
                   help="checkpoint to use (averaged: see genlab average)")
    _weights(s)

    d = sub.add_parser("data", help="show what a recipe trains on (image grid, text excerpts, points, MIDI); "
                                    "trains nothing",
                       description="Write (and print, for text) a look at what RECIPE learns from: its embedded "
                                   "default dataset or --data, shaped by --set keys as in training. Image recipes: "
                                   "a grid captioned with labels; text: excerpts; toy GANs: points and their plot; "
                                   "music: MIDI with piano rolls. Example: genlab data vae --n 32")
    d.add_argument("recipe", help="a recipe name (see: genlab list)")
    d.add_argument("--data", help="your data (file or folder); default: the recipe's embedded dataset")
    _sets(d, "a config key that shapes the data (e.g. dataset=digits, attribute=glasses)")
    d.add_argument("--n", type=int, help="examples to show (default: the recipe's choice)")
    d.add_argument("--out", help="output folder (default: runs/data/RECIPE-NNN, the next free number)")
    d.add_argument("--force", action="store_true", help="write into --out even if it already holds files")

    e = sub.add_parser("eval", help="evaluate a run on held-out data")
    e.add_argument("run")
    e.add_argument("--which", default="best", metavar="best|last|averaged",
                   help="checkpoint to use (averaged: see genlab average)")
    e.add_argument("--json", action="store_true", help="print JSON only")
    _weights(e)

    g = sub.add_parser("average", help="average the last N kept checkpoints of a run (train with keep_checkpoints)",
                       description="Write the element-wise mean of the weights of RUN's last N kept checkpoints "
                                   "(RUN/checkpoints/, kept by training with --set keep_checkpoints=N) to "
                                   "RUN/averaged/; sample or evaluate it with --which averaged.")
    g.add_argument("run")
    g.add_argument("--last", type=int, default=5, help="how many of the newest kept checkpoints (default 5)")

    i = sub.add_parser("info", help="describe a run directory")
    i.add_argument("run")
    i.add_argument("--json", action="store_true", help="print JSON")

    m = sub.add_parser("import", help="import a published checkpoint as a run directory (gpt2)")
    m.add_argument("kind", choices=["gpt2"], help="checkpoint family")
    m.add_argument("src", help="checkpoint folder (Hugging Face layout: config.json, weights, tokenizer files)")
    m.add_argument("--out", help="run directory to create (default: runs/<folder name>)")

    v = sub.add_parser("serve", help="serve runs behind an OpenAI-compatible API and a web page")
    v.add_argument("runs", nargs="+", metavar="RUN", help="run directory, or NAME=RUN to choose the model id")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on the API")
    v.add_argument("--max-batch", type=int, default=16, help="sequences decoded together per text model (1 = off)")
    v.add_argument("--max-queue", type=int, default=64, help="waiting sequences per model before 429")
    v.add_argument("--max-tokens", type=int, default=1024, help="cap on max_tokens per request")
    v.add_argument("--max-n", type=int, default=8, help="cap on n per request")
    v.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    v.add_argument("--device", default="auto")
    _weights(v)

    a = sub.add_parser("agent", help="answer a question with a ReAct agent over an OpenAI-compatible endpoint")
    a.add_argument("question")
    a.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="the endpoint (genlab serve's or another)")
    a.add_argument("--model", required=True, help="the chat model's id")
    a.add_argument("--api-key", help="bearer key for the endpoint")
    a.add_argument("--corpus", help="text file or folder the search tool indexes (default: genlab's embedded text)")
    a.add_argument("--image-model", help="a genlab image model id: adds the draw tool")
    a.add_argument("--text-model", help="a genlab text model id: adds the write tool")
    a.add_argument("--out", default="agent-images", help="folder for drawn images")
    a.add_argument("--max-iterations", type=int, default=6)
    return p


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve_runs
    from .serve.app import Limits

    for name, value in (("--port", args.port), ("--max-batch", args.max_batch), ("--max-queue", args.max_queue),
                        ("--max-tokens", args.max_tokens), ("--max-n", args.max_n)):
        if value < 1 or (name == "--port" and value > 65535):
            raise GenlabError(f"{name} must be a positive number (a port <= 65535), got {value}")
    if not args.timeout > 0:
        raise GenlabError(f"--timeout must be > 0, got {args.timeout}")
    limits = Limits(max_tokens=args.max_tokens, max_n=args.max_n, request_timeout=args.timeout,
                    max_batch=args.max_batch, max_queue=args.max_queue)
    serve_runs(args.runs, host=args.host, port=args.port, api_key=args.api_key, limits=limits, device=args.device,
               weights=args.weights)
    return 0


def _agent(args: argparse.Namespace) -> int:
    from .agent import Agent, ChatClient, default_tools

    if args.max_iterations < 1:
        raise GenlabError(f"--max-iterations must be >= 1, got {args.max_iterations}")
    client = ChatClient(args.base_url, args.model, api_key=args.api_key)
    tools = default_tools(client, corpus=args.corpus, image_model=args.image_model, text_model=args.text_model,
                          out_dir=args.out)
    result = Agent(client, tools, max_iterations=args.max_iterations).run(args.question)
    print(result.transcript())
    return 0 if result.answer is not None else 3


def _keys_text(recipe: str) -> str:
    from .engine.keys import describe_config, format_keys
    from .recipes import get_recipe

    cls = get_recipe(recipe)
    text = (f"config keys of {recipe} (--set KEY=VALUE, a TOML/YAML --config file, or --preset):\n"
            f"{format_keys(describe_config(cls.Config))}\n\n"
            f"sampling options of {recipe} (genlab sample RUN --set KEY=VALUE):\n"
            f"{format_keys(describe_config(cls.Sample))}")
    if cls.presets:
        text += "\n\npresets:\n" + "\n".join(
            f"  {name}: " + " ".join(f"{k}={v}" for k, v in values.items()) for name, values in cls.presets.items())
    return text


def _print_metrics(metrics: dict) -> None:
    for k, v in metrics.items():
        print(f"{k:>24s}  {v:.6g}" if isinstance(v, float) else f"{k:>24s}  {v}")


def next_sample_dir(run: Path) -> Path:
    """RUN/samples/cli-001, -002, ...: the first free number, so sampling again never overwrites."""
    from .api import next_free_dir

    return next_free_dir(run / "samples", "cli")


def _out_folder(out: str, force: bool) -> Path:
    """An --out folder for files: refused when it is a file, or already holds files without --force."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise ConfigError(f"{path} already holds files: choose another --out, or --force to write into it")
    return path


def _write(output: Any, out: Path) -> None:
    """What `sample` and `data` print: the output's summary (the texts themselves for text), then its files."""
    print(output.summary())
    for path in output.to_files(out):
        print(f"wrote: {path}")


def _sample(args: argparse.Namespace) -> int:
    from . import api

    run = api.load(args.run, which=args.which, weights=args.weights)
    options = parse_set(args.sets)
    if args.n is not None:
        options["n"] = args.n
    if args.seed is not None:
        options["seed"] = args.seed
    if args.stream:
        print(options.get("prompt", ""), end="", flush=True)
        for piece in run.stream(**options):
            print(piece, end="", flush=True)
        print()
        return 0
    out = _out_folder(args.out, args.force) if args.out else next_sample_dir(run.path)
    _write(run.sample(**options), out)
    return 0


def _data(args: argparse.Namespace) -> int:
    from . import api

    out = _out_folder(args.out, args.force) if args.out else api.next_free_dir(Path("runs") / "data", args.recipe)
    _write(api.show_data(args.recipe, data=args.data, overrides=args.sets, n=args.n), out)
    return 0


def _info_text(info: dict) -> str:
    params = info["parameters"]
    lines = [f"run:         {info['run']}",
             f"recipe:      {info['recipe']}",
             f"steps:       {info['step']}",
             f"parameters:  {sum(params.values()):,} ("
             + ", ".join(f"{k} {v:,}" for k, v in params.items() if v) + ")",
             f"data:        {info['data']}"]

    def metrics(title: str, row: dict | None) -> None:
        if row:
            shown = {k: v for k, v in row.items() if k not in ("kind", "step", "time")}
            lines.append(f"{title} (step {row.get('step')}): "
                         + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))

    metrics("last train", info["last_train"])
    metrics("last eval ", info["last_eval"])
    metrics("best      ", info["best"])
    changes = info["config_changes"]
    lines.append("config (changed from the defaults): "
                 + (", ".join(f"{k}={v}" for k, v in changes.items()) if changes else "all defaults"))
    return "\n".join(lines)


def run_command(args: argparse.Namespace) -> int:
    if args.command == "list":
        from .recipes import REGISTRY

        width = max(map(len, REGISTRY))
        for name, e in REGISTRY.items():
            print(f"{name:<{width}}  {e.summary} (default data: {e.default_data})")
        print("\nkeys and presets of a recipe: genlab keys RECIPE (or genlab train RECIPE --help)")
        return 0
    if args.command == "keys":
        print(_keys_text(args.recipe))
        return 0
    if args.command == "sample":
        return _sample(args)
    if args.command == "data":
        return _data(args)

    from . import api

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
    if args.command == "eval":
        run = api.load(args.run, which=args.which, weights=args.weights)
        metrics = run.evaluate()
        print(json.dumps(metrics)) if args.json else _print_metrics(metrics)
        return 0
    if args.command == "average":
        path = api.average(args.run, args.last)
        print(f"wrote: {path}  (use it: genlab eval {args.run} --which averaged)")
        return 0
    if args.command == "import":
        out = Path(args.out) if args.out else Path("runs") / Path(args.src).resolve().name
        path = api.import_gpt2(args.src, out)
        print(f"run: {path}  (sample it: genlab sample {path} --set prompt=\"Hello\")")
        return 0
    if args.command == "info":
        info = api.load(args.run).info()
        print(json.dumps(info, indent=1, default=str) if args.json else _info_text(info))
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "agent":
        return _agent(args)
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
    except BrokenPipeError:  # `genlab list | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
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


def entry() -> None:
    """The `genlab` command and `python -m genlab`: main(), then the process ends without the
    interpreter's teardown, which spent 0.4 s freeing torch's modules here and 0.8 s once
    torch._dynamo is imported (an optimizer's first step imports it): 4% of a 500-step GPT run
    (BENCHMARKS.md). Every file genlab writes is closed when main() returns; the process
    group and the standard streams are closed here."""
    code = main()
    if "torch.distributed" in sys.modules:
        from .engine.distributed import shutdown_distributed

        shutdown_distributed()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left (`genlab list | head`)
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
