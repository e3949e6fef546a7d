"""The deep encoders beside the classical ERP baselines on real data (eeg-notebooks N170 by default), per protocol.

    python bench/bench_baselines.py                               # n170: split by run + leave one subject out, conv encoder
    python bench/bench_baselines.py --protocol split loso loro --encoders conv lstm transformer conv:epochs=80,patience=20

Prints, per protocol, each decoder's number to read (balanced accuracy where classes are imbalanced) with its 95%
interval, chance, AUC and fit time, and each encoder's paired difference to the best baseline - one run, side by
side, so the ratios hold on a shared, noisy machine.
"""
import argparse, copy, time
import torch

def _encoder_section(spec: str, base: dict) -> tuple[str, dict]:
    "'conv' or 'conv:epochs=80,lr=3e-4' -> (label, encoder config section)."
    arch, _, opts = spec.partition(':')
    sec = dict(base, arch=arch)
    for kv in filter(None, opts.split(',')):
        k, v = kv.split('=')
        sec[k] = type(base.get(k, 1.0))(v) if k in base else (float(v) if '.' in v or 'e' in v else int(v))
    return spec, sec

def main(argv=None):
    from brain2image.config import get_preset, validate_config, build_dataset
    from brain2image.data import split_by
    from brain2image.preprocess import Preprocessor
    from brain2image.protocols import score_fold, evaluate_protocol, train_fresh_encoder
    from brain2image.baselines import compare_decoders
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', default='n170')
    p.add_argument('--protocol', nargs='+', default=['split', 'loso'], choices=['split', 'loso', 'loro'])
    p.add_argument('--encoders', nargs='+', default=['conv'])
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args(argv)
    from brain2image.core import log_to_console; log_to_console()   # the library's warnings on stderr, as the CLI shows them
    torch.set_num_threads(a.threads)
    cfg = validate_config(get_preset(a.preset))
    raw = build_dataset(cfg['dataset'], progress=False)
    if cfg['split'] not in raw.splits: split_by(raw, cfg['split'].removeprefix('by_'), seed=cfg['seed'])
    print(f'{raw}\nclass counts {raw.class_counts()}; preprocessing {cfg["preprocess"]}')
    encs = [_encoder_section(s, cfg['encoder']) for s in a.encoders]
    for kind in a.protocol:
        t0 = time.time(); res = {}
        if kind == 'split':
            ds = Preprocessor(**cfg['preprocess']).fit_transform(raw, train=(cfg['split'], 'train'), progress=False)
            base = score_fold(ds, cfg['split'], None, seed=cfg['seed'])
            for label, sec in encs:
                t = time.time(); enc = train_fresh_encoder(ds, cfg['split'], sec, cfg['seed'], None, False)
                r = score_fold(ds, cfg['split'], enc, baselines=(), seed=cfg['seed'])['encoder']; r.name = label; r.seconds = time.time() - t
                res[label] = r
            res.update(base)
            cmp = compare_decoders(res, reference=encs[0][0])
            results, folds = cmp.results, 1
        else:
            base = evaluate_protocol(raw, kind, preprocess=cfg['preprocess'], encoder=None, seed=cfg['seed'], progress=False)
            results = {}
            for label, sec in encs:
                r = evaluate_protocol(raw, kind, preprocess=cfg['preprocess'], encoder=sec, baselines=(), seed=cfg['seed'], progress=False)
                x = copy.copy(r.pooled.results['encoder']); x.name = label; results[label] = x
            results.update(base.pooled.results)
            cmp = compare_decoders(results, reference=encs[0][0]); folds = len(base.folds)
        m = cmp.measure
        print(f'\n== {kind} ({folds} fold{"s" if folds > 1 else ""}), {m}; {time.time() - t0:.0f} s in all')
        print(f'{"decoder":34s} {m[:8]:>8s} {"95% CI":>14s} {"chance":>7s} {"AUC":>6s} {"fit s":>7s}')
        for k, r in cmp.results.items():
            s = r.score; lo, hi = s.value_ci
            print(f'{k:34s} {s.value:8.3f} {f"[{lo:.3f}, {hi:.3f}]":>14s} {s.value_chance:7.3f} {s.auc if s.auc is not None else float("nan"):6.3f} {r.seconds:7.1f}')
        bases = [k for k in cmp.results if k in ('lda', 'xdawn')]
        best = max(bases, key=lambda k: cmp.results[k].score.value)
        for label, _ in encs:
            c = compare_decoders({label: cmp.results[label], best: cmp.results[best]}, reference=label)
            print(f'  {label} minus {best}: {c.differences[best]}')
    return 0

if __name__ == '__main__': raise SystemExit(main())
