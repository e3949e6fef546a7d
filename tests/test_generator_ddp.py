"GAN, VAE and diffusion training under torchrun (2 CPU processes, gloo): every rank ends with the same weights, rank 0 alone writes."
import json, os, shutil, subprocess
import pytest, torch
import torch.nn.functional as F
from torch import nn
from brain2image.fitting import average_gradients, broadcast_state, load_checkpoint

GENS = ('gan', 'vae', 'diffusion')

@pytest.mark.parametrize('kind', GENS)
def test_torchrun_two_processes_agree(tiny, tmp_path, kind):
    "Two processes share each global batch, draw different noise, and still end with identical weights (averaged gradients)."
    if shutil.which('torchrun') is None: pytest.skip('torchrun not on PATH')
    data = tiny.save(tmp_path / 'tiny.b2i')
    out = tmp_path / 'run'
    recipe = {'sample_steps': 2} if kind == 'diffusion' else {}
    cmd = ['torchrun', '--standalone', '--nproc_per_node', '2', '-m', 'brain2image.generator_ddp', str(data), str(out), '--generator', kind,
           '--epochs', '2', '--width', '8', '--batch-size', '32', '--device', 'cpu', '--recipe', json.dumps(recipe), '--rank-weights']
    env = dict(os.environ, OMP_NUM_THREADS='1', BRAIN2IMAGE_DEVICE='cpu')
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    model_files = sorted(p.name for p in tmp_path.rglob(f'{kind}.pt'))
    assert model_files == [f'{kind}.pt'], model_files
    files = sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file())
    assert files == sorted(['history.json', f'{kind}.pt', f'{kind}_checkpoint.pt', 'rank0.pt', 'rank1.pt',
                            'samples/epoch_000.png', 'samples/epoch_001.png']), files
    h = json.loads((out / 'history.json').read_text())
    assert h['world'] == 2 and h['finished'] and [e['epoch'] for e in h['history']] == [0, 1]
    w0, w1 = load_checkpoint(out / 'rank0.pt'), load_checkpoint(out / 'rank1.pt')
    assert w0.keys() == w1.keys() and len(w0) > 0
    for k in w0: assert torch.equal(w0[k], w1[k]), f'{kind}: {k} differs between rank 0 and rank 1'
    saved = load_checkpoint(out / f'{kind}.pt')[kind]
    for k in w0: assert torch.equal(saved[k], w0[k]), f'{kind}: {k} of {kind}.pt is not the ranks\' final weights'
    first = load_checkpoint(out / f'{kind}_checkpoint.pt')
    assert first['state']['epoch'] == 1

@pytest.mark.parametrize('kind', GENS)
def test_other_rank_writes_nothing(tiny, tmp_path, monkeypatch, kind):
    "A task that is not rank 0 trains its share but writes no checkpoint, grid or model file."
    import importlib
    from brain2image.generator_ddp import small_generator
    mod = importlib.import_module(f'brain2image.{kind}')
    monkeypatch.setattr(mod, 'ddp_info', lambda: (1, 2))            # rank 1 of 2, without a process group (no all_reduce)
    train = getattr(mod, f'train_{kind}')
    recipe = dict(gan=lambda: mod.GANRecipe(epochs=1, batch_size=32), vae=lambda: mod.VAEConfig(epochs=1, batch_size=32),
                  diffusion=lambda: mod.DiffusionRecipe(epochs=1, batch_size=32, sample_steps=2))[kind]()
    cond = F.one_hot(torch.from_numpy(tiny.labels), tiny.n_classes).float()
    torch.manual_seed(0)
    m = small_generator(kind, tiny.n_classes, tiny.n_classes, width=8)
    res = train(m, tiny, recipe, conditions=cond, out=tmp_path / 'run', progress=False, device='cpu')
    assert res.finished and len(res.history) == 1
    assert not (tmp_path / 'run').exists() or not any((tmp_path / 'run').rglob('*')), list((tmp_path / 'run').rglob('*'))

def _two_ranks(rank, store_path, out):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{store_path}', rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        with torch.no_grad(): net[0].weight.fill_(float(rank))            # ranks differ: broadcast_state makes them rank 0's
        broadcast_state(net)
        net[0].weight.grad = torch.full_like(net[0].weight, rank + 1.0)    # 1 and 2: the average is 1.5
        net[0].bias.grad = torch.full_like(net[0].bias, 4.0) if rank == 1 else None   # missing on rank 0: counts as 0 -> 2
        average_gradients(net)                                             # BatchNorm's grads: None on both ranks, stay None
        torch.save(dict(w=net[0].weight.detach().clone(), gw=net[0].weight.grad, gb=net[0].bias.grad,
                        bn=net[1].weight.grad is None), f'{out}/r{rank}.pt')
    finally: dist.destroy_process_group()

def test_average_gradients_two_ranks(tmp_path):
    "average_gradients divides the ranks' sum by the world size (a missing gradient counts as zero); broadcast_state copies rank 0."
    import torch.multiprocessing as mp
    mp.spawn(_two_ranks, args=(str(tmp_path / 'store'), str(tmp_path)), nprocs=2, join=True)
    for r in (0, 1):
        d = torch.load(tmp_path / f'r{r}.pt', weights_only=True)
        assert torch.equal(d['w'], torch.zeros(2, 3)), d['w']
        assert torch.allclose(d['gw'], torch.full((2, 3), 1.5)), d['gw']
        assert torch.allclose(d['gb'], torch.full((2,), 2.0)), d['gb']
        assert d['bn']

def test_single_process_helpers_are_noops():
    net = nn.Linear(3, 2); net(torch.randn(4, 3)).sum().backward()
    g = net.weight.grad.clone(); w = net.weight.detach().clone()
    average_gradients(net); broadcast_state(net)
    assert torch.equal(net.weight.grad, g) and torch.equal(net.weight, w)
