"""Benchmark `brain2image.preprocess.Preprocessor` against a naive loop over trials calling MNE.

    python bench/bench_preprocess.py --size full            # EEGCVPR40-sized: 11,964 x 128 x 500 float32 (3.06 GB), ~2 min
    python bench/bench_preprocess.py --size small           # 1,800 x 128 x 125, seconds
    python bench/bench_preprocess.py --load data/full.b2i   # a dataset folder written by EEGImageDataset.save

The pipeline is the usual EEGCVPR40 one: 5-95 Hz band-pass (as `eeg_5_95_std`), 50 Hz notch, samples 20:460,
per-channel standardisation fitted on the 'by_image' training trials. The naive reference is a Python loop that
calls `mne.filter.notch_filter` and `mne.filter.filter_data` on each trial and writes into a preallocated float32
array; it runs on `--naive-trials` trials and is extrapolated linearly to the whole set.

Memory: `tracemalloc` sees every NumPy buffer, so 'peak' is the input plus the most allocated at once during the
call, reported relative to the input size; the process's resident-set peak during the call (Linux VmHWM, reset
before it) is printed beside it and includes the interpreter and the libraries.
"""
import argparse, os, time, tracemalloc, warnings
from pathlib import Path

import numpy as np

GB = 1e9
PIPELINE = dict(l_freq=5, h_freq=95, notch=50, window=(20, 460), standardize='channel')


def rss_reset():
    "Reset the kernel's peak-RSS counter for this process (Linux); False where that is not possible."
    try: Path('/proc/self/clear_refs').write_text('5'); return True
    except OSError: return False

def rss_peak():
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'): return int(line.split()[1]) * 1024
    except OSError: pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def measure(f, memory=True):
    "(result, seconds, peak bytes allocated during f, process RSS peak during f)."
    can_reset = rss_reset()
    if memory: tracemalloc.start()
    t = time.perf_counter()
    out = f()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] if memory else float('nan')
    if memory: tracemalloc.stop()
    return out, dt, peak, rss_peak() if can_reset else float('nan')

def naive(eeg, sfreq, train, l_freq, h_freq, notch, window, keep_filtered=False, **_):
    "A loop over trials calling MNE per trial (float64), written into a preallocated float32 output, then standardised."
    import mne
    a, b = window
    out = np.empty((len(eeg), eeg.shape[1], b - a), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # MNE warns on every trial that its filters are longer than the epoch
        for i, x in enumerate(eeg):
            x = mne.filter.notch_filter(x.astype(np.float64), sfreq, notch, verbose=False)
            out[i] = mne.filter.filter_data(x, sfreq, l_freq, h_freq, verbose=False)[:, a:b]
    filtered = out.copy() if keep_filtered else None
    tr = out[train]
    mean, std = tr.mean((0, 2), dtype=np.float64), tr.std((0, 2), dtype=np.float64)
    out -= mean[:, None].astype(np.float32); out /= std[:, None].astype(np.float32)
    return out, filtered


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--size', choices=['full', 'small', 'tiny'], default='full', help='make_synthetic preset to build')
    ap.add_argument('--load', help='load this dataset folder (EEGImageDataset.save) instead of building one')
    ap.add_argument('--naive-trials', type=int, default=500, help='trials the naive loop runs on (then extrapolated)')
    ap.add_argument('--threads', type=int, default=None, help='BLAS threads (default: as the environment says)')
    args = ap.parse_args(argv)
    from brain2image.core import log_to_console; log_to_console()   # the library's warnings on stderr, as the CLI shows them
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    from brain2image.data import load_dataset
    from brain2image.preprocess import Preprocessor
    from brain2image.synthetic import make_synthetic

    t = time.perf_counter()
    ds = load_dataset(args.load) if args.load else make_synthetic(args.size)
    n, C, T = ds.eeg.shape
    inp = ds.eeg.nbytes
    print(f"dataset: {args.load or 'synthetic ' + args.size}, {n} x {C} x {T} float32 @ {ds.sfreq:g} Hz = {inp / GB:.2f} GB "
          f"({'loaded' if args.load else 'built'} in {time.perf_counter() - t:.0f} s); {os.cpu_count()} CPU cores")
    sfreq = ds.sfreq
    window = PIPELINE['window'] if T >= 460 else (int(0.04 * T), int(0.92 * T))   # samples 20:460 of 500, or the same share
    params = dict(PIPELINE, window=window, h_freq=min(PIPELINE['h_freq'], 0.4 * sfreq))
    print(f'pipeline: {params}')

    # the Preprocessor: default notch ('fit') and MNE's FIR notch (what the naive loop computes)
    Preprocessor(**params).fit_transform(ds[:8], train=np.arange(8), progress=False)    # warm up: imports, BLAS threads
    _, dt, _, _ = measure(lambda: Preprocessor(**params).fit_transform(ds), memory=False)
    _, dt_fir, _, _ = measure(lambda: Preprocessor(**params, notch_method='fir').fit_transform(ds, progress=False), memory=False)
    out, _, peak, rss = measure(lambda: Preprocessor(**params).fit_transform(ds, progress=False))   # again, for memory
    del out

    # the naive loop on a subset, extrapolated
    m = min(args.naive_trials, n)
    train_of = lambda k: np.flatnonzero(np.isin(np.arange(k), ds.splits['by_image']['train']))
    (_, filt_naive), dt_naive, _, _ = measure(lambda: naive(ds.eeg[:m], sfreq, train_of(m), keep_filtered=True, **params), memory=False)
    naive_full_time = dt_naive * n / m
    k1, k2 = min(25, m), min(50, m)                     # its memory grows linearly with the trials: fit a + b * k on two sizes
    p1, p2 = (measure(lambda: naive(ds.eeg[:k], sfreq, train_of(k), **params))[2] for k in (k1, k2))
    slope = (p2 - p1) / (k2 - k1) if k2 > k1 else p2 / k2
    naive_full_peak = p2 + slope * (n - k2)
    ours_filt = Preprocessor(**dict(params, standardize=None), notch_method='fir').transform_array(ds.eeg[:m], sfreq=sfreq, progress=False)
    diff = float(np.abs(ours_filt - filt_naive).max())

    rows = [('Preprocessor, notch fit (default)', dt, inp + peak, rss),
            ("Preprocessor, notch_method='fir'", dt_fir, float('nan'), float('nan')),
            (f'naive MNE loop ({m} trials -> {n})', naive_full_time, inp + naive_full_peak, float('nan'))]
    print(f"\n{'':38s} {'wall time':>10s}   {'peak memory (input + allocations)':>34s}   {'process RSS peak':>16s}")
    for name, s, p, r in rows:
        mem = '' if p != p else f'{p / GB:.2f} GB = {p / inp:.2f} x input'
        print(f"{name:38s} {s:9.1f}s   {mem:>34s}   {'' if r != r else f'{r / GB:.2f} GB':>16s}")
    print(f'\nspeed-up over the naive loop: {naive_full_time / dt:.0f}x (default notch), {naive_full_time / dt_fir:.0f}x (same FIR notch)')
    print(f'naive loop: {1e3 * dt_naive / m:.1f} ms per trial; its time and memory are extrapolated linearly from {m} (time) and {k1}/{k2} (memory) trials')
    print(f"max |Preprocessor(notch_method='fir') - naive loop| before standardisation, {m} trials: {diff:.2e} uV "
          f'(signal max {float(np.abs(filt_naive).max()):.0f} uV)')

if __name__ == '__main__':
    main()
