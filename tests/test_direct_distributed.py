"""Data-parallel STBP training: 2 CPU processes (gloo) launched by torch.distributed.run."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    from spikebridge.data import make_loaders
    from spikebridge.direct import build_direct_snn, train_direct
    from spikebridge.direct.distributed import shutdown_distributed, DistributedContext
    import torch.distributed as dist

    out = sys.argv[1]
    torch.set_num_threads(1)
    train_loader, _ = make_loaders("digits", batch_size=16, limit=32, seed=0, train_limit=128)
    torch.manual_seed(0)
    net = build_direct_snn("cnn", 10, 1, 8, width=0.25)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    result = train_direct(net, train_loader, None, timesteps=2, epochs=2, optimizer="sgd", lr=0.1,
                   device="cpu", seed=0, checkpoint_path=os.path.join(out, "ck.pt"))
    rank = dist.get_rank()
    torch.save({"initial": initial, "final": net.state_dict(), "history": result.history,
                "world": dist.get_world_size()}, os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
    """
)


def run_two_processes(worker: str, tmp_path: Path, timeout: int) -> None:
    """Run ``worker`` (Python source; argv[1] = tmp_path) as 2 CPU processes under torchrun."""
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_two_process_ddp_trains_and_ranks_agree(tmp_path):
    run_two_processes(WORKER, tmp_path, timeout=300)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    for key in r0["final"]:
        assert torch.equal(r0["final"][key], r1["final"][key]), key
    changed = [
        k
        for k in r0["final"]
        if k.endswith("weight") and not torch.equal(r0["final"][k], r0["initial"][k])
    ]
    assert changed, "no weight moved: the processes did not train"
    # losses and accuracies are reduced over both processes, so both report the same
    assert [(h["loss"], h["train_accuracy"]) for h in r0["history"]] == [
        (h["loss"], h["train_accuracy"]) for h in r1["history"]
    ]
    assert r0["history"][-1]["loss"] < r0["history"][0]["loss"]
    assert (tmp_path / "ck.pt").exists()


NAN_WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    import torch.distributed as dist
    from spikebridge.direct import build_direct_snn, train_direct
    from spikebridge.direct.trainer import TrainingDiverged

    out = sys.argv[1]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    if rank == 1:  # only this process sees a NaN loss
        import spikebridge.direct.trainer as trainer
        real_loss = trainer.stbp_loss
        def nan_loss(*args):
            loss, output = real_loss(*args)
            return loss * float("nan"), output
        trainer.stbp_loss = nan_loss
    x = torch.rand(32, 1, 8, 8)
    data = torch.utils.data.TensorDataset(x, torch.randint(0, 10, (32,)))
    loader = torch.utils.data.DataLoader(data, batch_size=32)
    torch.manual_seed(0)
    net = build_direct_snn("cnn", 10, 1, 8, width=0.25)
    try:
        train_direct(net, loader, None, timesteps=2, epochs=1, optimizer="sgd", lr=0.1, device="cpu",
              seed=0, checkpoint_path=os.path.join(out, "ck.pt"))
    except TrainingDiverged as err:
        open(os.path.join(out, f"rank{rank}.txt"), "w").write(str(err))
    dist.barrier()
    dist.destroy_process_group()
    """
)


def test_a_nan_loss_on_one_process_stops_every_process(tmp_path):
    """Under torchrun the divergence check is collective: no process is left waiting in DDP's
    gradient all-reduce for one that stopped."""
    run_two_processes(NAN_WORKER, tmp_path, timeout=120)
    messages = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert "NaN/inf on another process" in messages[0]
    assert "the loss became nan" in messages[1]
