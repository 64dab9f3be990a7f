"""The `microglia` command line. Its options are built from `TrainConfig`, the one configuration surface."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import typing

from microglia.errors import ConfigError, MicrogliaError, TrainingInterrupted

logger = logging.getLogger("microglia")

OPTION_HELP = {
    "dataset": (
        "data set: digits (ships with scikit-learn), mnist, fashion-mnist, or arrays "
        "(your own .npz file with x_train, y_train, x_test, y_test)"
    ),
    "data_dir": (
        "folder that contains <dataset>/<IDX .gz files>, or the .npz file for arrays; "
        "default: the MICROGLIA_DATA environment variable"
    ),
    "download": "download missing MNIST or Fashion-MNIST files into --data-dir",
    "validation_fraction": "fraction of the training data held out for validation and model selection",
    "hidden": "hidden layer widths, comma-separated, e.g. 500,500",
    "steps": "time steps per sample (T)",
    "burn_in": "steps at the start of each sample without error or loss (default: steps // 4)",
    "encoding": "input encoding: direct (constant current), rate (Bernoulli spikes) or latency",
    "beta": "membrane decay factor per step of hidden neurons, in (0, 1]",
    "kappa": "decay factor per step of the readout, in (0, 1]",
    "threshold": "initial firing threshold of hidden neurons",
    "reset": "reset after a spike: subtract or zero",
    "surrogate": "pseudo-derivative shape: triangle or fast_sigmoid",
    "gamma": "height of the pseudo-derivative (dampening factor)",
    "init_scale": "hidden weights start uniform in +-init_scale / sqrt(fan_in)",
    "rule": (
        "learning rule: glia (forward-only glial learning), bptt (surrogate-gradient BPTT), "
        "perturbation (antithetic weight perturbations, for small networks) or ann (ReLU MLP baseline, no spikes)"
    ),
    "feedback": "glial feedback pathway: exact, sign, random or direct",
    "consolidation": "how sleep applies the accumulated tags: sgd, adam, sign or rprop",
    "lr": "learning rate (initial step size for rprop)",
    "schedule": "learning-rate schedule: cosine (decays to 0 over the run) or constant",
    "sleep_interval": "wake minibatches between two sleeps (K; 1 is online learning)",
    "chunk_steps": "time steps processed together by the glial learner (memory grows with it, not with --steps)",
    "density": "fraction of possible synapses present at the end of training, per layer and territory (1.0: dense)",
    "initial_density": "fraction of synapses present at the start; when it differs from --density, "
    "a cosine schedule moves from it to --density (default: equal to --density)",
    "density_decay": "fraction of the run over which the cosine density schedule reaches --density",
    "prune_fraction": "fraction of each territory's present synapses pruned and regrown at every structural step",
    "prune_schedule": "constant (every structural step exchanges --prune-fraction) "
    "or cosine (the exchanged fraction decays to 0 over the run)",
    "regrowth": "where new synapses grow: guided (largest accumulated tag of absent synapses) or random",
    "territory_size": "postsynaptic neurons per glial territory (each territory keeps its own synapse budget)",
    "structure_interval": "sleeps between two structural steps (prune and grow)",
    "target_rate": "homeostatic target firing rate of hidden neurons, in spikes per step (0: homeostasis off)",
    "homeostasis_rate": "gain of the homeostatic update per sleep: theta *= exp(rate * (firing rate - target)), "
    "bias -= rate * theta * (firing rate - target)",
    "perturbation_sigma": "standard deviation of each weight perturbation of --rule perturbation",
    "perturbation_pairs": "antithetic perturbation pairs per minibatch of --rule perturbation (2 forward passes each)",
    "perturbation_rank": "rank of each weight perturbation of --rule perturbation (0: full rank)",
    "alignment_probe": (
        "validation samples on which glia runs log the angle and sign agreement between "
        "the glial update and the BPTT gradient each epoch (0: off)"
    ),
    "batch_size": "samples per minibatch",
    "epochs": "passes over the training data",
    "patience": "stop after this many epochs without a better validation accuracy (0: never)",
    "seed": "random seed for weights, data order, validation split and spike encoding",
    "threads": "torch CPU threads (0: torch's default)",
    "checkpoint_every": "minibatches between two checkpoints (0: only at the end of each epoch)",
    "out": "run directory to write (default: runs/<dataset>-<rule>[-<feedback>]-<time>)",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; every `TrainConfig` field becomes a `train` option."""
    from microglia.training.config import TrainConfig

    # every parser sets allow_abbrev=False because argparse would otherwise read a prefix such as --seed as --seeds
    parser = argparse.ArgumentParser(
        prog="microglia",
        description="Train spiking neural networks with glial learning instead of back-propagation.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a network and write a run directory", allow_abbrev=False)
    train.add_argument("--config", metavar="FILE", help="TOML file of settings; options given here override it")
    train.add_argument(
        "--resume",
        metavar="RUN",
        help=(
            "continue the interrupted run in directory RUN from its newest valid checkpoint, with its config.toml; "
            "only --data-dir, --threads and --quiet may be given with it"
        ),
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch log")

    _add_config_options(train, TrainConfig)

    compare = commands.add_parser(
        "compare",
        help="train a grid of rules x feedback kinds x consolidation rules x sleep intervals over seeds; tabulate",
        description=(
            "Train every combination of the grid over N seeds (in parallel processes), then write "
            "results.csv, results.md and results.png with mean ± standard deviation over seeds. "
            "Feedback, consolidation and sleep interval apply to the glia rule only. Every other "
            "option is a training setting shared by all runs. Rerunning the same command reuses "
            "finished runs and resumes interrupted ones from their newest checkpoint."
        ),
        allow_abbrev=False,
    )
    compare.add_argument("--grid", metavar="FILE", help="TOML file of grid axes and shared settings; options given here override it")
    for axis, help_text in COMPARE_AXIS_HELP.items():
        parse = _parse_integer_list if axis == "sleep_interval" else _parse_list
        compare.add_argument("--" + axis.replace("_", "-"), type=parse, default=None, metavar="LIST", help=help_text)
    compare.add_argument("--seeds", type=int, default=None, help="number of seeds per configuration, 0 to N-1 (default: 1)")
    compare.add_argument(
        "--workers", type=int, default=None, help="parallel training processes (default: 0, one per CPU core)"
    )
    compare.add_argument("--out", default=None, help="output folder (default: compare/<dataset>-<time>)")
    compare.add_argument("--quiet", action="store_true", help="log only warnings and errors")
    _add_config_options(compare, TrainConfig, skip={"rule", "feedback", "consolidation", "sleep_interval", "seed", "out"})

    for name, help_text in (
        ("evaluate", "evaluate a run's weights on the test split: accuracy, confusion matrix, spikes and SynOps"),
        ("report", "write PNG figures and a Markdown page (RUN/report/report.md) for a run"),
    ):
        command = commands.add_parser(name, help=help_text, allow_abbrev=False)
        command.add_argument("run", metavar="RUN", help="run directory written by microglia train")
        command.add_argument(
            "--weights",
            metavar="FILE",
            help=(
                "weights file or checkpoint to load (default: RUN/weights.safetensors, else the newest checkpoint); "
                "the test evaluation is written to RUN/evaluation-NAME.json for a file NAME.safetensors "
                "other than the default"
            ),
        )
        command.add_argument("--data-dir", metavar="DIR", help="where the data set lies, if it moved since training")
    return parser


COMPARE_AXIS_HELP = {
    "rule": "learning rules, comma-separated: glia, bptt, perturbation, ann (default: glia)",
    "feedback": "glial feedback kinds, comma-separated: exact, sign, random, direct (default: sign)",
    "consolidation": "consolidation rules, comma-separated: sgd, adam, sign, rprop (default: adam)",
    "sleep_interval": "sleep intervals K, comma-separated integers (default: 1)",
}


def _add_config_options(parser: argparse.ArgumentParser, config_type, skip: set[str] = frozenset()) -> None:
    """Add one option per field of `config_type` (a TrainConfig) not in `skip`, defaulting to None."""
    hints = typing.get_type_hints(config_type)
    for f in dataclasses.fields(config_type):
        if f.name == "extra" or f.name in skip:
            continue
        option = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = OPTION_HELP[f.name]
        if default is not None:
            help_text += f" (default: {_show_default(default)})"
        if f.name == "download":
            parser.add_argument(option, action="store_true", default=None, help=OPTION_HELP[f.name])
            continue
        parser.add_argument(
            option, type=_option_type(f.name, hints[f.name]), default=None, metavar=f.name.upper(), help=help_text
        )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    commands = {"train": _train, "evaluate": _evaluate, "report": _report, "compare": _compare}
    try:
        return commands[args.command](args)
    except MicrogliaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # a run directory or output file that cannot be written, such as --out on a read-only path
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except TrainingInterrupted as interruption:
        print(str(interruption), file=sys.stderr)
        return 128 + interruption.signal_number
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from microglia.training import Trainer, TrainConfig

    overrides = {
        key: value
        for key, value in vars(args).items()
        if value is not None and key not in ("command", "config", "quiet", "resume")
    }
    if args.resume:
        # only settings that cannot change the results may differ from the run's config.toml
        changed = sorted(set(overrides) - {"data_dir", "threads"})
        if args.config or changed:
            options = ", ".join("--" + name.replace("_", "-") for name in (["config"] if args.config else []) + changed)
            raise ConfigError(
                f"--resume continues a run with its own config.toml and accepts only --data-dir, --threads "
                f"and --quiet; remove {options}"
            )
        trainer = Trainer.resume(args.resume, progress=not args.quiet, **overrides)
    elif args.config:
        trainer = Trainer(TrainConfig.from_toml(args.config, **overrides), progress=not args.quiet)
    else:
        trainer = Trainer(TrainConfig.from_dict(overrides), progress=not args.quiet)

    with logging_redirect_tqdm():
        result = trainer.run()

    test = result.test
    chosen = "best epoch" if trainer.config.validation_fraction > 0 else "last epoch (no validation split)"
    print(
        f"test accuracy {test.accuracy:.4f} ({round(test.accuracy * test.samples)}/{test.samples}) "
        f"{chosen} {result.best_epoch}, run directory {result.run_dir}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from microglia.training.runs import evaluate_run, load_run

    run = load_run(args.run, weights=args.weights, data_dir=args.data_dir)
    test = evaluate_run(run)
    print(f"run {run.run_dir}, weights {run.weights_path}")
    print(f"test accuracy {test.accuracy:.4f} ({round(test.accuracy * test.samples)}/{test.samples}), loss {test.loss:.4f}")
    if test.firing_rate is None:
        print("no spike statistics: the run trained a ReLU MLP (rule ann)")
    else:
        rates = ", ".join(f"{rate:.3f}" for rate in test.firing_rate)
        print(f"spikes per sample {test.spikes_per_sample:.1f}, SynOps per sample {test.synops_per_sample:.0f}")
        print(f"firing rate per hidden layer [{rates}]")
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(len(str(count)) for row in test.confusion for count in row)
    for row in test.confusion:
        print(" ".join(str(count).rjust(width) for count in row))
    print(f"written to {run.evaluation_path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from microglia.training.report import write_report
    from microglia.training.runs import load_run

    page = write_report(load_run(args.run, weights=args.weights, data_dir=args.data_dir))
    print(f"report written to {page}")
    return 0


COMPARE_CONTINUE_HINT = (
    "to continue the whole comparison, rerun the same microglia compare command: "
    "it reuses finished runs and resumes unfinished ones"
)


def _compare(args: argparse.Namespace) -> int:
    from microglia.compare import compare, grid_from_values

    values, workers, out = _compare_values(args)
    grid = grid_from_values(values)

    try:
        result = compare(grid, out, workers=workers)
    except TrainingInterrupted as interruption:
        raise TrainingInterrupted(f"{interruption}; {COMPARE_CONTINUE_HINT}", interruption.signal_number) from None
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"interrupted; {COMPARE_CONTINUE_HINT}", int(signal.SIGINT)) from None

    print(result.markdown_path.read_text(encoding="utf-8"), end="")
    print(f"table: {result.csv_path}, {result.markdown_path}; figure: {result.figure_path}")
    failed = sum(1 for outcome in result.outcomes if outcome.error is not None)
    if failed:
        print(f"error: {failed} run(s) failed; see the log above", file=sys.stderr)
        return 1
    return 0


def _compare_values(args: argparse.Namespace) -> tuple[dict, object, str]:
    """Merge the grid file with the options and return the grid values, `workers` and the output folder."""
    from datetime import datetime

    from microglia.compare import read_grid_file

    values = read_grid_file(args.grid) if args.grid else {}
    overrides = {
        key: value
        for key, value in vars(args).items()
        if value is not None and key not in ("command", "grid", "quiet")
    }
    values.update(overrides)

    workers = values.pop("workers", 0)
    out = values.pop("out", None)
    if out is None:
        out = f"compare/{values.get('dataset', 'digits')}-{datetime.now():%Y%m%d-%H%M%S}"
    elif not isinstance(out, str) or not out:
        raise ConfigError(f"out: expected a non-empty folder path, got {out!r}")
    return values, workers, out


def _parse_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list such as sign,random, got {text!r}")
    return items


def _parse_integer_list(text: str) -> list[int]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        values = [int(item) for item in items]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,10, got {text!r}")
    return values


def _option_type(name: str, annotation) -> typing.Callable[[str], object]:
    if name == "hidden":
        return _parse_widths
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    base = args[0] if args else annotation
    if base in (int, float):
        return base
    return str


def _parse_widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 500,500, got {text!r}") from None
    return widths


def _show_default(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(getattr(value, "value", value))


if __name__ == "__main__":
    sys.exit(main())
