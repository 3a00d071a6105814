"""One sweep worker process: `python -m lit_mia.sweep.worker SWEEP PARENT_RUN_ID INDEX [k=v ...]`.

Started by `lit-mia sweep SWEEP --workers N` (`study.launch_workers`); joins the study of the
launcher, logs its trials under the launcher's MLflow parent run, and exits like the CLI
(0, 2 on bad input, 130 when interrupted).
"""

from __future__ import annotations

import signal
import sys


def _sigterm(signum, frame):  # pragma: no cover - signal path
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    from lit_mia.errors import ConfigError
    from lit_mia.quiet import quiet_lightning

    signal.signal(signal.SIGTERM, _sigterm)
    quiet_lightning()  # as quiet as `lit-mia run`: no Lightning banners or tips
    name, parent, index, *overrides = argv
    try:
        import torch

        from lit_mia.sweep.study import Sweep, work

        torch.set_num_threads(max(1, int(__import__("os").environ.get("OMP_NUM_THREADS", "1"))))
        work(Sweep(name, overrides), parent, int(index))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the launcher says it once for all workers
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
