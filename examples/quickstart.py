"""A small learning-rate sweep logged with runlane, a fork of the best run, then how to look at them
(the web UI: `runlane ui`; the CLI: `runlane ls`).

python examples/quickstart.py              # store in ./.runlane (or $RUNLANE_DIR)
python examples/quickstart.py --dir /tmp/x
"""

from __future__ import annotations

import argparse
import math
import random

import runlane


def train(lr: float, steps: int, seed: int) -> runlane.Run | runlane.NoOpRun:
    rng = random.Random(seed)
    run = runlane.init(
        project="quickstart/sweep",
        name=f"lr-{lr:g}",
        config={"lr": lr, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "steps": steps},
        tags=["sweep", "demo"],
    )
    run.set_primary_metric("val/acc", mode="max")
    loss = 2.5
    for step in range(steps):
        loss *= 1 - lr * (0.5 + rng.random())
        epoch = step // 100
        run.log({"train": {"loss": loss, "lr": lr}}, stage=f"epoch_{epoch}")
        if step % 100 == 99:
            acc = 1 - math.exp(-lr * step / 5) * 0.9 + rng.gauss(0, 0.01)
            run.log({"val/acc": acc}, step=step)
            run.log_text(f"epoch {epoch}: val/acc={acc:.3f}")
    run.summary({"final_loss": loss})
    run.finish()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="store directory (default: $RUNLANE_DIR or ./.runlane)")
    args = parser.parse_args()
    if args.dir:
        import os

        os.environ["RUNLANE_DIR"] = args.dir

    runs = [train(lr, steps=500, seed=i) for i, lr in enumerate([0.003, 0.01, 0.03])]

    with runlane.Api() as api:
        best = max(api.runs(project="quickstart/sweep"), key=lambda r: r.best_value or -1)
        loss = api.history(best.id, "train/loss", start=300, end=300)[0].value

    # Fork the best run at step 300 and try a lower learning rate from there: the fork inherits the
    # config (with lr overridden), continues at step 301, and its chart continues the parent's.
    fork = runlane.init(name=f"{best.name}-decay", fork_run_id=best.id, fork_step=300, config={"lr": 0.001})
    for _ in range(301, 500):
        loss *= 0.999
        fork.log({"train": {"loss": loss, "lr": 0.001}})
    fork.finish()

    with runlane.Api() as api:
        stitched = api.history(fork.id, "train/loss", stitched=True)
        print(f"Logged {len(runs) + 1} runs into {api.dir}")
        print(f"Best run: {best.display_id} ({best.name}) val/acc={best.best_value:.3f} at step {best.best_step}")
        print(
            f"Forked it at step 300 as {fork.display_id}: its stitched train/loss has {len(stitched)} points, "
            f"steps {stitched.steps[0]}-{stitched.steps[-1]} from runs {sorted(set(stitched.run_ids))}\n"
        )
    where = f" --dir {args.dir}" if args.dir else ""
    print("See the fork continue its parent's chart (dashed line at step 300) in the web UI:")
    print(f"  runlane ui{where}   # then open http://127.0.0.1:8000/run/{fork.display_id}/charts\n")
    print("Look at them:")
    print(f"  runlane ls{where}                   # every run, newest first")
    print(f"  runlane show {best.display_id}{where}          # config, summary and metrics of the best run")
    print(f"  runlane show {best.display_id} --json{where}   # the same, for scripts")
    print(f"  runlane show {fork.display_id}{where}          # the fork, with its lineage")
    api_dir = repr(args.dir) if args.dir else ""
    print(f"  python -c \"import runlane; print(runlane.Api({api_dir}).history({best.display_id!r}, 'val/acc'))\"")


if __name__ == "__main__":
    main()
