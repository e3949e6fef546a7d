"""Judge accuracy against training wall-clock for each generator, from class codes and from held-out EEG, at 32 and 64 px,
side by side in one run, and the interpolation slider's latency (one image per step) per generator.

Reads a finished quickstart run (its preprocessed data, encoder conditions and cross-fitted judge), so every generator
is scored by the same judge on the same 180 held-out trials:

    brain2image run --preset quickstart --out runs/quickstart        # README command 1
    OMP_NUM_THREADS=2 python bench/bench_generators.py --run runs/quickstart --budgets 30 60 120 300 --sizes 32 64

Each generator follows the quickstart's recipe: trained on class codes, drawing the class the EEG's posterior names
(sharpened to temperature 0.2). Only training time counts towards a budget; the scoring between budgets is not timed.
"""
import argparse, tempfile, time
import numpy as np
import torch
from brain2image.pipeline import load_run
from brain2image.core import seeded
from brain2image.conditioning import generate_images


def sharpen(p, t=0.2):
    q = p.clamp_min(1e-12) ** (1 / t)
    return q / q.sum(1, keepdim=True)


def build(name, K, size):
    "(model, train(model, out, budget_call) -> TrainResult, condition transform at generation)."
    if name == 'gan':
        from brain2image.gan import ConditionalGAN, gan_preset, train_gan
        arch, rc = gan_preset('stable', image_size=size, epochs=1000, diffaugment='color,translation')
        with seeded(0): m = ConditionalGAN(arch, K, K)
        return m, lambda ds, c, out: train_gan(m, ds, rc, conditions=c, out=out, progress=False, max_epochs_this_call=1), lambda c: c
    if name == 'vae':
        from brain2image.vae import EEGVAE, VAEConfig, train_vae
        with seeded(0): m = EEGVAE(K, image_size=size, image_encoder=True, temperature=0.2)
        rc = VAEConfig(epochs=1000, train_on='class', keep_best=False)
        return m, lambda ds, c, out: train_vae(m, ds, rc, conditions=c, out=out, progress=False, max_epochs_this_call=1), lambda c: c
    if name == 'diffusion':
        from brain2image.diffusion import EEGDiffusion, DiffusionConfig, DiffusionRecipe, train_diffusion
        with seeded(0): m = EEGDiffusion(DiffusionConfig(cond_dim=K, image_size=size, block_out_channels=(32, 64, 64)))
        rc = DiffusionRecipe(epochs=1000, sample_steps=10, keep_best=False, grid_samples=0)
        onehot = lambda ds: torch.eye(K)[torch.from_numpy(ds.labels)]
        return (m, lambda ds, c, out: train_diffusion(m, ds, rc, conditions=onehot(ds), out=out, progress=False, max_epochs_this_call=1),
                sharpen)
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run', default='runs/quickstart', help='a finished quickstart run directory')
    ap.add_argument('--budgets', type=float, nargs='+', default=[30, 60, 120, 300], help='training seconds at which to score')
    ap.add_argument('--sizes', type=int, nargs='+', default=[32, 64])
    ap.add_argument('--generators', nargs='+', default=['gan', 'vae', 'diffusion'])
    ap.add_argument('--per-class', type=int, default=20, help='class-code images per class')
    ap.add_argument('--slider-steps', type=int, default=30)
    a = ap.parse_args()
    run = load_run(a.run)
    ds, judge, post = run.ds, run.judge, run.conditions['posterior']
    K, test = ds.n_classes, np.asarray(ds.splits[run.config['split']]['test'])
    y, enc = ds.labels[test], float((post[test].argmax(1).numpy() == ds.labels[test]).mean())
    codes, code_y = torch.eye(K).repeat_interleave(a.per_class, 0), np.arange(K).repeat(a.per_class)
    print(f'run {a.run}: {len(test)} held-out trials, encoder accuracy {enc:.3f}, judge {judge.heldout}; torch threads {torch.get_num_threads()}')
    rows = []
    for size in a.sizes:
        for name in a.generators:
            m, train, tf = build(name, K, size)
            acc = lambda c, lab: float((judge.predict(generate_images(m, tf(c), 1, seed=1)[:, 0]).numpy() == lab).mean())
            spent, epochs = 0.0, 0
            with tempfile.TemporaryDirectory() as out:
                for b in sorted(a.budgets):
                    while spent < b:
                        t0 = time.perf_counter(); train(ds, post, out); spent += time.perf_counter() - t0; epochs += 1
                    m.eval()
                    rows.append(dict(generator=name, px=size, budget_s=b, trained_s=round(spent, 1), epochs=epochs,
                                     class_codes=acc(codes, code_y), eeg=acc(post[test], y)))
                    r = rows[-1]
                    print(f"{name:9s} {size:3d}px  {b:5.0f} s budget ({r['trained_s']:6.1f} s, {epochs:3d} epochs): "
                          f"class codes {r['class_codes']:.3f}  held-out EEG {r['eeg']:.3f} ({r['eeg'] / enc:.0%} of the encoder)", flush=True)
            c = tf(post[test[:1]]); lat = []
            for i in range(a.slider_steps):   # one slider step: one image for one condition on the path
                t0 = time.perf_counter(); generate_images(m, c * (1 - i / a.slider_steps) + tf(post[test[1:2]]) * i / a.slider_steps, 1, seed=0)
                lat.append(1000 * (time.perf_counter() - t0))
            rows[-1]['slider_p50_ms'], rows[-1]['slider_p95_ms'] = float(np.percentile(lat, 50)), float(np.percentile(lat, 95))
            print(f"{name:9s} {size:3d}px  slider step p50 {rows[-1]['slider_p50_ms']:.1f} ms, p95 {rows[-1]['slider_p95_ms']:.1f} ms", flush=True)
    print('\n| generator | px | budget s | epochs | class codes | held-out EEG | EEG / encoder | slider p50 / p95 ms |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for r in rows:
        sl = f"{r['slider_p50_ms']:.0f} / {r['slider_p95_ms']:.0f}" if 'slider_p50_ms' in r else ''
        print(f"| {r['generator']} | {r['px']} | {r['budget_s']:.0f} | {r['epochs']} | {r['class_codes']:.2f} | {r['eeg']:.2f} | "
              f"{r['eeg'] / enc:.0%} | {sl} |")


if __name__ == '__main__':
    main()
