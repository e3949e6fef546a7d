"""Benchmark the interpolation slider: time from a slider value change to the new image being ready, p50 / p95.

    python bench/bench_widgets.py                       # on the tiny run (made once by example_run), 200 steps
    python bench/bench_widgets.py --preset quickstart   # on the quickstart run
    python bench/bench_widgets.py --run runs/quickstart --steps 400 --threads 1

What is timed: `explorer.slider.value = v` in Python (what ipywidgets does when the browser sends a new slider
value) until the `value` trait of the main `ipywidgets.Image` is set with the new PNG bytes (observed with
`Image.observe`): the generator pass for one image, the conversion to uint8, the nearest-neighbour enlargement to
192 px and the PNG encoding. The judge's reading of the image comes after the image and is reported apart
("handler": the whole Python callback). Not timed: the websocket round trip and the browser's decoding of a
~20 kB PNG, a few ms on a local JupyterLab.

Generators: the run's GAN and VAE (32 px), and an untrained 64 px GAN of the run's `stable` architecture (weights
do not change the cost of a forward pass) on the same conditions. Modes, all in the same process and on the same
trials (two class means of the run's held-out trials):

- `explorer (cold)`: the explorer with its result cache off, every step to a new value (random walk on the
  0.01 grid): one generator pass per step, as on a first drag.
- `explorer (warm)`: the explorer's cache filled by one sweep; steps to values seen before, as when dragging back.
- `naive (reference)`: the straightforward recipe, where every slider change redraws everything: the strip of
  8 images, the judge's probabilities along the path (21 images) with its matplotlib plot, then the image.

A step whose new PNG is byte-identical to the previous one (a saturated generator between near-identical
conditions) sends no change, so it is not timed; `unchanged` counts those steps and `n` the timed ones.

"Ratio" is naive p95 / explorer (cold) p95. Target (issue 6): p95 under 50 ms for 64 x 64 images on a laptop CPU.
Results go to the screen and as JSON to `--out` (bench/results/ is git-ignored).

Measured 2026-11-25 on the 2-core development machine (Python 3.11, torch 2.14, 1 torch thread, shared with
other jobs, load average 2.1), on a quickstart run (`--run`), image ready after the slider change, in ms:

    generator             px  mode                 p50    p95   (n)
    gan (stable)          32  explorer (cold)      2.4    3.3   200
    gan (stable)          32  explorer (warm)      0.0    0.1   200
    gan (stable)          32  naive (reference)  126.0  159.0    60    ratio 48x
    vae                   32  explorer (cold)      2.1    3.1   200
    vae                   32  naive (reference)  122.7  136.4    60    ratio 44x
    gan (stable, untr.)   64  explorer (cold)      3.7    6.3   200
    gan (stable, untr.)   64  explorer (warm)      0.0    0.1   200
    gan (stable, untr.)   64  naive (reference)  156.9  181.0    60    ratio 29x

The whole Python handler (with the judge's reading of the image) had p95 5.0 ms (32 px) and 8.6 ms (64 px).
Under heavier load (load average 4) the same run gave a 64 px p95 of 13.3 ms (explorer) and 419 ms (naive).
"""
import argparse, json, os, platform, sys, time
from pathlib import Path

import numpy as np
import torch


def _walk(n, step, rng):
    "n slider values on the grid, each different from the previous one."
    grid = np.round(np.arange(0, 1 + step / 2, step), 6); i = rng.integers(len(grid)); out = []
    for _ in range(n):
        j = i
        while j == i: j = int(np.clip(i + rng.integers(-10, 11), 0, len(grid) - 1))
        i = j; out.append(float(grid[i]))
    return out


def _measure(exp, values):
    "Latency (s) from slider.value = v to the image value being set, and of the whole handler, per step."
    stamp = {}
    def seen(change): stamp['t'] = time.perf_counter()
    exp.image.observe(seen, 'value')
    lat, handler, same = [], [], 0
    try:
        for v in values:
            stamp.clear(); t0 = time.perf_counter()
            exp.slider.value = v
            t1 = time.perf_counter()
            if 't' not in stamp: same += 1; continue        # identical PNG bytes: traitlets sends no change; not counted
            lat.append(stamp['t'] - t0); handler.append(t1 - t0)
    finally: exp.image.unobserve(seen, 'value')
    if same > len(values) // 2: raise RuntimeError(f'{same} of {len(values)} steps left the image unchanged: nothing to time')
    return np.array(lat), np.array(handler), same


def _stats(x):
    ms = 1e3 * np.asarray(x)
    return dict(p50=float(np.percentile(ms, 50)), p95=float(np.percentile(ms, 95)), mean=float(ms.mean()), max=float(ms.max()), n=int(len(ms)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument('--run', help='a finished run directory')
    g.add_argument('--preset', default='tiny', help='example_run preset when --run is not given (default tiny)')
    p.add_argument('--steps', type=int, default=200, help='slider steps per mode (default 200)')
    p.add_argument('--naive-steps', type=int, default=60, help='steps of the naive reference (slower; default 60)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1: a shared laptop; 0 = leave as is)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'widgets.json'))
    a = p.parse_args(argv)
    from brain2image.core import log_to_console; log_to_console()   # the library's warnings on stderr, as the CLI shows them
    if a.threads: torch.set_num_threads(a.threads)
    os.environ.setdefault('MPLBACKEND', 'Agg')
    from brain2image.pipeline import load_run, example_run
    from brain2image.gan import ConditionalGAN, gan_config
    from brain2image.interpolation_explorer import InterpolationExplorer
    run = load_run(a.run) if a.run else example_run(preset=a.preset, progress=False)
    gens = dict(run.generators)
    ref = gens.get('gan')
    cfg = ref[0].cfg if ref is not None else gan_config('stable')
    mode = ref[1] if ref is not None else 'posterior'
    torch.manual_seed(a.seed)
    g64 = ConditionalGAN(gan_config('stable', image_size=64, ngf=cfg.ngf, ndf=cfg.ndf, z_dim=cfg.z_dim),
                         run.conditions[mode].shape[1], run.ds.n_classes).eval()
    gens['gan-64px-untrained'] = (g64, mode)
    rng = np.random.default_rng(a.seed)
    rows, results = [], dict(run=str(run.dir), dataset=repr(run.ds), steps=a.steps, naive_steps=a.naive_steps,
                             threads=torch.get_num_threads(), python=platform.python_version(), torch=torch.__version__,
                             platform=platform.platform(), processor=platform.processor() or platform.machine(),
                             cpu_count=os.cpu_count(), loadavg=os.getloadavg()[0] if hasattr(os, 'getloadavg') else None,
                             when=time.strftime('%Y-%m-%d %H:%M:%S'), results=[])
    print(f'{run.dir}: {run.ds!r}\ntorch threads {torch.get_num_threads()}, load average {results["loadavg"]}\n')
    for name, (g, m) in gens.items():
        px = int(getattr(g, 'cfg', None).image_size if hasattr(g, 'cfg') else g.image_size)
        res = {}
        cold = InterpolationExplorer(run.conditions, {name: (g, m)}, run.ds, trials=run.test, judge=run.judge, cache_size=0, seed=a.seed)
        _measure(cold, _walk(10, 0.01, rng))                                          # warm-up (allocator, first calls)
        res['explorer (cold)'] = _measure(cold, _walk(a.steps, 0.01, rng))
        warm = InterpolationExplorer(run.conditions, {name: (g, m)}, run.ds, trials=run.test, judge=run.judge, seed=a.seed)
        _measure(warm, list(np.round(np.arange(0.01, 1.005, 0.01), 6)))                # fill the cache (0 is there)
        res['explorer (warm)'] = _measure(warm, _walk(a.steps, 0.01, rng))
        naive = InterpolationExplorer(run.conditions, {name: (g, m)}, run.ds, trials=run.test, judge=run.judge, cache_size=0, seed=a.seed)
        naive.slider.unobserve(naive._on_t, 'value')
        naive.slider.observe(lambda ch, e=naive: (e._update_strip(), e._update_plot(), e._update_image()), 'value')
        _measure(naive, _walk(3, 0.01, rng))
        res['naive (reference)'] = _measure(naive, _walk(a.naive_steps, 0.01, rng))
        for k, (lat, hand, same) in res.items():
            s = _stats(lat); h = _stats(hand); s['unchanged'] = same
            rows.append((name, px, k, s, h))
            results['results'].append(dict(generator=name, image_size=px, mode=k, image_ready_ms=s, handler_ms=h))
        ratio = _stats(res['naive (reference)'][0])['p95'] / _stats(res['explorer (cold)'][0])['p95']
        results['results'].append(dict(generator=name, image_size=px, mode='ratio naive/cold p95', value=ratio))
        rows.append((name, px, 'ratio naive / cold (p95)', ratio, None))
    print(f'{"generator":22s} {"px":>3s}  {"mode":26s} {"p50 ms":>7s} {"p95 ms":>7s} {"mean":>7s} {"max":>7s} {"n":>4s}  {"handler p95":>11s}  {"unchanged":>9s}')
    for name, px, k, s, h in rows:
        if h is None: print(f'{name:22s} {px:3d}  {k:26s} {s:7.1f}x'); continue
        print(f'{name:22s} {px:3d}  {k:26s} {s["p50"]:7.1f} {s["p95"]:7.1f} {s["mean"]:7.1f} {s["max"]:7.1f} {s["n"]:4d}  {h["p95"]:11.1f}  {s["unchanged"]:9d}')
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    from brain2image.core import atomic_path
    with atomic_path(out) as tmp: tmp.write_text(json.dumps(results, indent=1))
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
