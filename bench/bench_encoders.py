"""Benchmark encoder training: the paper's reference recipe against this project's default recipe, side by side.

    python bench/bench_encoders.py --size full --cap-seconds 300   # EEGCVPR40-shaped: 11,964 x 128 x 500 @ 1 kHz
    python bench/bench_encoders.py --size small --cap-seconds 60   # 1,800 x 128 x 125 @ 250 Hz, a quick run

Two figures per recipe, from one training run per recipe on the same data, in one process:

- **throughput**: training trials per second over `--steps` optimiser steps after `--warmup` steps;
- **time to target**: seconds of training until the validation accuracy first reaches each `--targets` value,
  within `--cap-seconds` of training per recipe. A target not reached within the cap is reported as 'not
  reached', with the best validation accuracy the recipe got to in that time.

The run is the body of `brain2image.training.train_encoder` (same trial order `epoch_order`, objective, optimiser,
learning-rate schedule, gradient clipping and early stopping, all built by `EncoderTask`), instrumented: validation accuracy is
measured at the end of every epoch (as `train_encoder` does) **and** every `--eval-every` seconds of training,
because one epoch of the reference recipe on a 2-core CPU takes longer than any sensible cap (about 8 minutes for
EEGCVPR40-sized data). The clock counts training steps only; validation passes are timed apart and reported.
"Speed-up" is reference time / default time (for throughput: default / reference); above 1 the default is faster.

Recipes (both on the same synthetic trials, split by image, with train-only per-channel standardisation):

- `reference`: Brain2Image as published - the paper's LSTM (128 units, 128-d ReLU feature), samples 20:460
  (440 at 1 kHz) of data band-passed 5-95 Hz with a 50 Hz notch (as the `eeg_5_95_std` file), cross-entropy,
  Adam lr 1e-3, batch 16, no schedule (`brain2image.training.PAPER_RECIPE`).
- `default`: this project's recipe for a laptop CPU - 1-40 Hz band-pass, 50 Hz notch, average reference,
  pre-stimulus baseline, the post-stimulus 0-0.4 s resampled to 125 Hz (50 samples), the EEGNet-style `conv`
  encoder, `TrainConfig()` defaults (AdamW, batch 64, cosine schedule with warm-up, early stopping, grad clipping).

The data default to `--design random` (no slow drift tied to the class order), so validation accuracy measures the
response to the image, not the block design's drift. Results go to `--out` (JSON) as well as the screen.
Timings on a shared machine vary with its load: the 1-minute load average is recorded with the results. On a
machine shared with other jobs, two OpenMP threads per process can be far slower than one (seen here: the conv
encoder trained at 77 trials/s with two threads beside other jobs and 5,500 with one); use `--threads 1` there.

Measured 2026-11-25, `--size full --cap-seconds 100 --eval-every 35`, 2 threads of an idle 16-core Intel Xeon
(torch 2.11, Python 3.12; the device machine's CPU, because the 2-core development machine was shared and loaded):

    reference  LSTM 440 samples, batch 16   21 trials/s, ~505 s/epoch; val acc 0.022 after 100 s (0.2 epoch), chance 0.025
    default    conv 50 samples, batch 64    6,854 trials/s, 1.2 s/epoch; val acc 0.2 after 4 s, 0.573 after 40 epochs (50 s)
    preprocessing of the 3.06 GB array: 12.1 s (reference) and 1.2 s (default); data built in 29 s

On an H100 (`--device cuda --recipes reference --cap-seconds 90`) the reference runs 3,200 trials/s (3 s/epoch) and
reaches val acc 0.05 after 24 epochs (60 s), best 0.051 in 36 epochs: on data without block-design drift the paper's
recipe barely learns.
"""
import argparse, json, os, platform, sys, time
from pathlib import Path

import numpy as np
import torch

from brain2image.encoders import make_encoder, count_parameters
from brain2image.preprocess import Preprocessor
from brain2image.synthetic import make_synthetic
from brain2image.training import PAPER_RECIPE, TrainConfig

RECIPES = {
    'reference': dict(
        what='paper LSTM, samples 20:460 of 5-95 Hz + notch data, CE, Adam 1e-3, batch 16, no schedule (PAPER_RECIPE)',
        preprocess=dict(l_freq=5, h_freq=95, notch=50, window=(20, 460), standardize='channel'),
        encoder='lstm', encoder_options={}, config=PAPER_RECIPE),
    'default': dict(
        what='1-40 Hz + notch + CAR + baseline, 0-0.4 s at 125 Hz, conv (EEGNet-style), TrainConfig() (AdamW, batch 64, cosine, early stop)',
        preprocess=dict(l_freq=1, h_freq=40, notch=50, reref='average', baseline=(None, 0), crop=(0, None), resample=125,
                        standardize='channel'),
        encoder='conv', encoder_options={}, config=TrainConfig()),
}


def adapt_preprocess(p: dict, ds) -> dict:
    "The reference's samples 20:460 are defined at 1 kHz; on other rates keep the same times (20-460 ms into the epoch)."
    p = dict(p)
    if 'window' in p and ds.sfreq != 1000.0:
        a, b = p.pop('window')
        p['crop'] = (ds.tmin + a / 1000, min(ds.tmin + b / 1000, ds.times[-1]))
    if p.get('h_freq') and p['h_freq'] >= ds.sfreq / 2: p['h_freq'] = 0.9 * ds.sfreq / 2
    if p.get('notch') and min(p['notch'] if isinstance(p['notch'], (list, tuple)) else [p['notch']]) >= ds.sfreq / 2: p.pop('notch')
    return p


def run_recipe(r: dict, ds, cap: float, eval_every: float, steps: int, warmup: int, targets, device, seed: int) -> dict:
    "Train as `train_encoder` does for at most `cap` seconds of training steps; throughput and validation-accuracy checkpoints."
    from brain2image.training import epoch_order, EncoderTask
    cfg = r['config']
    torch.manual_seed(seed); np.random.seed(seed)
    enc = make_encoder(r['encoder'], ds.n_chans, ds.n_times, ds.n_classes, **r['encoder_options']).to(device)
    # train_encoder's own task (tensors, objective, optimiser, schedule, step); the epoch loop is unrolled here only to
    # validate mid-epoch, because one epoch of the reference recipe is longer than the cap
    task = EncoderTask(enc, ds, cfg, None, device, None)
    (xtr, _, _), (xva, yva, _) = task.train_data, task.val_data
    n_steps_epoch = len(epoch_order(len(xtr), 0, cfg.seed, cfg.batch_size))
    sync = (lambda: torch.cuda.synchronize()) if device.type == 'cuda' else (lambda: None)

    @torch.no_grad()
    def val_acc():
        enc.eval(); t = time.perf_counter()
        correct = sum(int((enc.head(enc(xva[i:i + 512].to(device))).argmax(1).cpu() == yva[i:i + 512]).sum()) for i in range(0, len(xva), 512))
        task.train_mode()
        return correct / len(xva), time.perf_counter() - t

    train_s, eval_s, since_eval, step_i, evals = 0.0, 0.0, 0.0, 0, []
    tp = dict(steps=steps, warmup=warmup, batch_size=cfg.batch_size)
    best, bad, stop, epoch = -1.0, 0, False, 0
    task.train_mode()
    while not stop and epoch < cfg.epochs:
        for bi, b in enumerate(epoch_order(len(xtr), epoch, cfg.seed, cfg.batch_size)):
            t = time.perf_counter()
            task.train_step(b); sync()                      # train_encoder's own step (objective, probe, clipping, schedule)
            dt = time.perf_counter() - t
            train_s += dt; since_eval += dt; step_i += 1
            if step_i == warmup: tp['t0'] = train_s
            if step_i == warmup + steps:
                tp['seconds'] = train_s - tp.pop('t0'); tp['steps_per_s'] = steps / tp['seconds']
                tp['trials_per_s'] = steps * cfg.batch_size / tp['seconds']
            end_of_epoch = bi == n_steps_epoch - 1
            if since_eval >= eval_every or end_of_epoch or train_s >= cap:
                acc, es = val_acc(); eval_s += es; since_eval = 0.0
                evals.append(dict(train_seconds=round(train_s, 2), epoch=round(epoch + (bi + 1) / n_steps_epoch, 3), val_acc=round(acc, 4)))
                if end_of_epoch and cfg.patience:                   # early stopping on epoch-end validation accuracy
                    best, bad = (acc, 0) if acc > best else (best, bad + 1)
                    stop = bad >= cfg.patience
            if train_s >= cap: stop = True
            if stop: break
        epoch += 1
    if 'trials_per_s' not in tp: tp.update(seconds=None, steps_per_s=None, trials_per_s=None, note=f'only {step_i} steps ran')
    acc = np.array([e['val_acc'] for e in evals])
    out = dict(throughput=tp, cap_seconds=cap, train_seconds=train_s, eval_seconds=eval_s, steps_run=step_i,
               steps_per_epoch=n_steps_epoch, epochs_run=round(step_i / n_steps_epoch, 3),
               seconds_per_epoch_estimate=train_s / step_i * n_steps_epoch, stopped_early=bool(stop and train_s < cap),
               best_val_acc=float(acc.max()) if len(acc) else None, evals=evals, targets={})
    for tg in targets:
        hit = np.flatnonzero(acc >= tg)
        out['targets'][str(tg)] = (dict(reached=True, seconds=evals[hit[0]]['train_seconds'], epoch=evals[hit[0]]['epoch'])
                                   if len(hit) else dict(reached=False, seconds=None, epoch=None))
    return out


def fmt_t(d):
    return f"{d['seconds']:.0f} s (ep. {d['epoch']:.2f})" if d['reached'] else 'not reached'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', default='full', choices=['tiny', 'small', 'full'], help="synthetic preset ('full' is EEGCVPR40-shaped)")
    p.add_argument('--design', default='random', choices=['random', 'block'])
    p.add_argument('--recipes', default='reference,default')
    p.add_argument('--cap-seconds', type=float, default=300, help='seconds of training allowed per recipe (time-to-target figure)')
    p.add_argument('--eval-every', type=float, default=None, help='seconds of training between validation checks (default: cap/6), besides every epoch end')
    p.add_argument('--targets', default='0.05,0.1,0.2', help='validation accuracies (comma-separated)')
    p.add_argument('--steps', type=int, default=40, help='timed training steps for the throughput figure')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps before them')
    p.add_argument('--threads', type=int, default=2, help='torch.set_num_threads (the CI machines have 2 cores)')
    p.add_argument('--device', default='cpu', help="'cpu' (default: the laptop figure) or 'cuda'")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'encoders.json'))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    eval_every = a.eval_every or a.cap_seconds / 6
    targets = [float(t) for t in a.targets.split(',') if t]
    names = [n for n in a.recipes.split(',') if n]
    for n in names:
        if n not in RECIPES: p.error(f'--recipes: unknown recipe {n!r}; available: {list(RECIPES)}')

    print(f'torch {torch.__version__}, {a.threads} threads, device {device}, {os.cpu_count()} CPUs visible, '
          f'load average {os.getloadavg()[0]:.2f}', flush=True)
    t = time.perf_counter()
    raw = make_synthetic(a.size, design=a.design, seed=a.seed, progress=False)
    t_make = time.perf_counter() - t
    print(f'data: {raw} built in {t_make:.1f} s', flush=True)
    results = dict(args=vars(a), torch=torch.__version__, python=sys.version.split()[0], cpus=os.cpu_count(), machine=platform.machine(),
                   load_average_start=os.getloadavg()[0], device=str(device),
                   gpu=torch.cuda.get_device_name(0) if device.type == 'cuda' else None,
                   data=dict(size=a.size, design=a.design, shape=list(raw.eeg.shape), sfreq=raw.sfreq, n_classes=raw.n_classes,
                             make_seconds=t_make), chance=1 / raw.n_classes, recipes={})
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        r = RECIPES[name]
        pp = adapt_preprocess(r['preprocess'], raw)
        t = time.perf_counter()
        ds = Preprocessor(**pp).fit_transform(raw, progress=False)
        t_pre = time.perf_counter() - t
        cfg = r['config']
        n_par = count_parameters(make_encoder(r['encoder'], ds.n_chans, ds.n_times, ds.n_classes, **r['encoder_options']))
        print(f'\n[{name}] {r["what"]}\n  preprocessing {t_pre:.1f} s -> {ds.n_chans} x {ds.n_times} @ {ds.sfreq:g} Hz; '
              f'{r["encoder"]} {n_par:,} parameters; train/val {len(ds.splits[cfg.split][cfg.train_part])}/'
              f'{len(ds.splits[cfg.split][cfg.val_part])} trials', flush=True)
        res = run_recipe(r, ds, a.cap_seconds, eval_every, a.steps, a.warmup, targets, device, a.seed)
        tp = res['throughput']
        if tp['trials_per_s']: print(f"  throughput: {tp['trials_per_s']:.0f} trials/s ({tp['steps_per_s']:.2f} steps/s of batch {cfg.batch_size})")
        best = res['best_val_acc']
        print(f"  {res['train_seconds']:.0f} s of training = {res['epochs_run']:.2f} epochs (~{res['seconds_per_epoch_estimate']:.0f} s/epoch"
              f"{', stopped early' if res['stopped_early'] else ''}), validation {res['eval_seconds']:.0f} s apart; "
              f"best val acc {'-' if best is None else f'{best:.3f}'} (chance {1 / raw.n_classes:.3f})")
        print('  val acc at (s of training): ' + ', '.join(f"{e['val_acc']:.3f} ({e['train_seconds']:.0f})" for e in res['evals']))
        for tg, d in res['targets'].items(): print(f'  time to val acc {tg}: {fmt_t(d)}', flush=True)
        results['recipes'][name] = dict(what=r['what'], preprocess=pp, preprocess_seconds=t_pre, encoder=r['encoder'],
                                        encoder_options=r['encoder_options'], parameters=n_par, train_config=vars(cfg),
                                        input_shape=[ds.n_chans, ds.n_times], sfreq=ds.sfreq, **res)
        out.write_text(json.dumps(results, indent=1, default=str))      # partial results survive an interrupted run
        del ds
    results['load_average_end'] = os.getloadavg()[0]
    if {'reference', 'default'} <= set(results['recipes']):
        R, D = results['recipes']['reference'], results['recipes']['default']
        div = lambda x, y: x / y if x and y else None
        ratio = dict(throughput_trials_per_s=div(D['throughput']['trials_per_s'], R['throughput']['trials_per_s']),
                     seconds_per_epoch=div(R['seconds_per_epoch_estimate'], D['seconds_per_epoch_estimate']))
        for tg in map(str, targets):
            r_, d_ = R['targets'][tg], D['targets'][tg]
            ratio[f'time_to_{tg}'] = (r_['seconds'] / d_['seconds'] if r_['reached'] and d_['reached'] else
                                      f">{a.cap_seconds / d_['seconds']:.0f}x (ref. not reached)" if d_['reached'] else None)
        results['speedup_default_vs_reference'] = ratio
        x = lambda q: f'{q:.1f}x' if isinstance(q, float) else (q or '-')
        acc3 = lambda v: '-' if v is None else f'{v:.3f}'
        print(f'\n{"":26s}{"reference":>18s}{"default":>18s}{"speed-up of default":>26s}')
        row = lambda label, r_, d_, q='': print(f'{label:26s}{r_:>18s}{d_:>18s}{q:>26s}')
        row('throughput (trials/s)', f"{R['throughput']['trials_per_s'] or float('nan'):.0f}", f"{D['throughput']['trials_per_s'] or float('nan'):.0f}",
            x(ratio['throughput_trials_per_s']))
        row('seconds per epoch', f"{R['seconds_per_epoch_estimate']:.0f}", f"{D['seconds_per_epoch_estimate']:.1f}", x(ratio['seconds_per_epoch']))
        row(f'best val acc in {a.cap_seconds:.0f} s', acc3(R['best_val_acc']), acc3(D['best_val_acc']))
        for tg in map(str, targets):
            row(f'time to val acc {tg}', fmt_t(R['targets'][tg]), fmt_t(D['targets'][tg]), x(ratio[f'time_to_{tg}']))
        row('preprocessing (s)', f"{R['preprocess_seconds']:.1f}", f"{D['preprocess_seconds']:.1f}")
        print(f'chance {1 / raw.n_classes:.3f}; data built in {t_make:.0f} s; load average at start/end '
              f'{results["load_average_start"]:.2f}/{results["load_average_end"]:.2f}')
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f'wrote {out}')
    return results


if __name__ == '__main__':
    main()
