"""Which reconstruction loss draws the most recognisable pictures? The quickstart's conditional VAE (class codes, last
epoch, EEG posteriors sharpened to temperature 0.2) trained with each `VAEConfig.recon`, scored by the run's
cross-fitted judge on class codes and on the 180 held-out trials' EEG, from the mean code and from one prior sample.

    brain2image run --preset quickstart --out runs/quickstart        # README command 1
    OMP_NUM_THREADS=1 python bench/bench_vae_loss.py --run runs/quickstart --recon mse l1 ssim
"""
import argparse, time
import numpy as np
import torch
from brain2image.pipeline import load_run
from brain2image.vae import EEGVAE, VAEConfig, train_vae
from brain2image.conditioning import generate_images


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run', default='runs/quickstart', help='a finished quickstart run directory')
    ap.add_argument('--recon', nargs='+', default=['mse', 'l1', 'ssim'])
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--size', type=int, default=32)
    a = ap.parse_args()
    run = load_run(a.run)
    ds, judge, post = run.ds, run.judge, run.conditions['posterior']
    K, test = ds.n_classes, np.asarray(ds.splits[run.config['split']]['test'])
    y, enc = ds.labels[test], float((post[test].argmax(1).numpy() == ds.labels[test]).mean())
    codes, code_y = torch.eye(K).repeat_interleave(20, 0), np.arange(K).repeat(20)
    print(f'run {a.run}: encoder accuracy {enc:.3f} on {len(test)} held-out trials; judge {judge.heldout}')
    rows = []
    for recon in a.recon:
        torch.manual_seed(0); m = EEGVAE(K, image_size=a.size, image_encoder=True, temperature=0.2)
        t0 = time.perf_counter()
        train_vae(m, ds, VAEConfig(epochs=a.epochs, train_on='class', keep_best=False, recon=recon), conditions=post, progress=False)
        dt = time.perf_counter() - t0; m.eval()
        score = lambda c, lab, s: float((judge.predict(generate_images(m, c, 2, seed=1)[:, s]).numpy() == lab).mean())
        rows.append((recon, dt, score(codes, code_y, 0), score(post[test], y, 0), score(codes, code_y, 1), score(post[test], y, 1)))
        print(f'{recon:5s} {dt:6.1f} s: mean code: class codes {rows[-1][2]:.3f}, held-out EEG {rows[-1][3]:.3f}; '
              f'one sample: {rows[-1][4]:.3f}, {rows[-1][5]:.3f}', flush=True)
    print('\n| recon | train s | class codes (mean code) | held-out EEG (mean code) | class codes (a sample) | held-out EEG (a sample) |')
    print('| --- | --- | --- | --- | --- | --- |')
    for r in rows: print(f'| {r[0]} | {r[1]:.0f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} |')


if __name__ == '__main__':
    main()
