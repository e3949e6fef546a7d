import json, os, shutil, subprocess, sys
import numpy as np, pytest, torch
from brain2image.core import DataFormatError
from brain2image.encoders import make_encoder
from brain2image.synthetic import make_synthetic
from brain2image.fitting import load_checkpoint
from brain2image.training import TrainConfig, train_encoder, encode, load_encoder
from brain2image.image_classifier import train_image_encoder, image_embeddings
from weights import assert_same_weights

@pytest.fixture(scope='module')
def tiny(tiny_standardised):
    "This module trains encoders: the tiny preset with standardised channels (conftest.tiny_standardised)."
    return tiny_standardised


def _train(ds, cfg, out=None, seed=0, name='lstm', **kw):
    torch.manual_seed(seed)
    enc = make_encoder(name, ds.n_chans, ds.n_times, ds.n_classes, **kw)
    return enc, train_encoder(enc, ds, cfg, out=out, progress=False)

def test_deterministic(tiny):
    cfg = TrainConfig(epochs=2, batch_size=32, patience=0)
    a, ra = _train(tiny, cfg); b, rb = _train(tiny, cfg)
    assert_same_weights(a, b)
    c, rc = _train(tiny, cfg, seed=1)
    with pytest.raises(AssertionError): assert_same_weights(a, c)      # the tolerance still tells runs apart

def test_learns_and_stops_early(tiny):
    enc, r = _train(tiny, TrainConfig(epochs=40, batch_size=32, patience=4), name='transformer')
    assert r.best_score > 1.5 * (1 / tiny.n_classes), r.history[-1]     # chance 0.25; LDA reaches ~0.55 on tiny
    assert r.stopped_early and r.epochs_run < 40
    assert r.history[r.best_epoch]['val_bacc'] == r.best_score     # the epoch is picked on balanced validation accuracy

def test_resume_matches_uninterrupted(tiny, tmp_path):
    cfg = TrainConfig(epochs=5, batch_size=32, patience=0, objective='supcon')
    full, rf = _train(tiny, cfg, out=tmp_path / 'a', name='transformer', dropout=0.1)
    torch.manual_seed(0)
    enc = make_encoder('transformer', tiny.n_chans, tiny.n_times, tiny.n_classes, dropout=0.1)
    r1 = train_encoder(enc, tiny, cfg, out=tmp_path / 'b', progress=False, max_epochs_this_call=2)
    assert not r1.finished and not (tmp_path / 'b' / 'encoder.pt').exists()
    torch.manual_seed(99)   # a new process: other global RNG, other init - the checkpoint must restore everything
    enc2 = make_encoder('transformer', tiny.n_chans, tiny.n_times, tiny.n_classes, dropout=0.1)
    r2 = train_encoder(enc2, tiny, cfg, out=tmp_path / 'b', progress=False)
    assert r2.finished and r2.epochs_run == rf.epochs_run
    np.testing.assert_allclose([h['val_loss'] for h in r2.history], [h['val_loss'] for h in rf.history], rtol=1e-4, atol=1e-5)
    assert_same_weights(full, enc2)

def test_resume_after_early_stop_trains_no_more(tiny, tmp_path):
    "A run that stopped early is finished: running it again loads the best weights instead of training on."
    cfg = TrainConfig(epochs=40, batch_size=32, patience=2)
    a, ra = _train(tiny, cfg, out=tmp_path, name='conv', kernel_length=16)
    assert ra.stopped_early and ra.epochs_run < 40
    b, rb = _train(tiny, cfg, out=tmp_path, seed=5, name='conv', kernel_length=16)
    assert rb.finished and rb.epochs_run == ra.epochs_run
    for k, v in a.state_dict().items(): assert torch.equal(v, b.state_dict()[k]), k    # exact: b loads the stored best weights, nothing recomputed

def test_resume_refuses_other_model(tiny, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=32, patience=0)
    _train(tiny, TrainConfig(epochs=1, batch_size=32), out=tmp_path)
    enc = make_encoder('lstm', tiny.n_chans, tiny.n_times, tiny.n_classes, hidden_size=16)
    with pytest.raises(DataFormatError, match='identity.model'): train_encoder(enc, tiny, cfg, out=tmp_path, progress=False)
    enc = make_encoder('lstm', tiny.n_chans, tiny.n_times, tiny.n_classes)
    with pytest.raises(DataFormatError, match='identity.recipe'):       # same model, another recipe: refused too, naming the field
        train_encoder(enc, tiny, TrainConfig(epochs=2, batch_size=16), out=tmp_path, progress=False)

def test_recipe_is_checked(tiny):
    "A typo in a recipe fails loudly instead of silently picking another behaviour."
    with pytest.raises(ValueError, match="TrainConfig.monitor='val_f1'"): TrainConfig(monitor='val_f1')
    with pytest.raises(ValueError, match="positive integer"): TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lr_rate'\]"): TrainConfig.from_dict(dict(lr_rate=0.1))
    assert TrainConfig.from_dict(TrainConfig(lr=0.01).to_dict()) == TrainConfig(lr=0.01)
    with pytest.raises(TypeError, match='recipe must be a TrainConfig'):
        train_encoder(make_encoder('conv', tiny.n_chans, tiny.n_times, tiny.n_classes, kernel_length=16), tiny, dict(epochs=1))

OBJECTIVE_NAMES = ('ce', 'triplet', 'supcon', 'clip')

def _class_gap(f, y):
    "Mean cosine distance to other-class trials minus mean cosine distance to same-class trials (> 0: classes group)."
    z = f / np.linalg.norm(f, axis=1, keepdims=True); d = 1 - z @ z.T
    same = y[:, None] == y[None]; off = ~np.eye(len(y), dtype=bool)
    return float(d[~same].mean() - d[same & off].mean())

@pytest.fixture(scope='module')
def objective_runs():
    """The conv encoder trained 8 epochs with each objective from one seed and one initialisation.
    The data: the tiny preset with a 3x evoked response (snr=3), standardised; at snr=1 (the `tiny` fixture) a few CPU
    epochs barely move the features (class gap ~0.01), so a test of what each objective does to the features needs a
    stronger signal to keep a margin. About 3 s in all on one thread."""
    ds = make_synthetic('tiny', snr=3.0, progress=False)
    ds.eeg = (ds.eeg - ds.eeg.mean((0, 2), keepdims=True)) / ds.eeg.std((0, 2), keepdims=True)
    img = train_image_encoder(ds, epochs=3)
    emb = image_embeddings(img, ds)
    torch.manual_seed(0)
    init = make_encoder('conv', ds.n_chans, ds.n_times, ds.n_classes, kernel_length=16).state_dict()
    runs = {}
    for name in OBJECTIVE_NAMES:
        enc = make_encoder('conv', ds.n_chans, ds.n_times, ds.n_classes, kernel_length=16); enc.load_state_dict(init)
        torch.manual_seed(0)
        res = train_encoder(enc, ds, TrainConfig(epochs=8, batch_size=32, patience=0, objective=name),
                            image_embeddings=emb if name == 'clip' else None, progress=False)
        runs[name] = dict(history=res.history, features=encode(enc, ds))
    enc = make_encoder('conv', ds.n_chans, ds.n_times, ds.n_classes, kernel_length=16); enc.load_state_dict(init)
    return dict(ds=ds, emb=emb, runs=runs, init_features=encode(enc, ds))

@pytest.mark.parametrize('objective', OBJECTIVE_NAMES)
def test_objectives_train(objective_runs, objective):
    "Each objective trains: finite losses that fall over 8 epochs, finite features of the encoder's size."
    ds, r = objective_runs['ds'], objective_runs['runs'][objective]
    if objective == 'clip': assert objective_runs['emb'].shape == (len(ds.images), 64)
    loss = np.array([h['train_loss'] for h in r['history']])
    assert len(loss) == 8 and np.isfinite(loss).all(), loss
    assert loss[-1] < 0.97 * loss[0], f'{objective}: the training loss did not fall: {loss.round(3).tolist()}'
    assert r['features'].shape == (len(ds), 128) and np.isfinite(r['features']).all()

def test_objectives_differ(objective_runs):
    """The objective switch matters: from one seed and one initialisation, the four objectives give other training losses
    and other features. An ignored `objective` (every run training the same loss) gives identical histories and
    features here, since the runs are deterministic, and fails this test."""
    runs = objective_runs['runs']
    for i, a in enumerate(OBJECTIVE_NAMES):
        for b in OBJECTIVE_NAMES[i + 1:]:
            la, lb = ([h['train_loss'] for h in runs[n]['history']] for n in (a, b))
            assert not np.allclose(la, lb, rtol=1e-3), f'{a} and {b} gave the same training losses {la}'
            fa, fb = runs[a]['features'], runs[b]['features']
            assert np.abs(fa - fb).max() > 1e-2 * np.abs(fa).max(), f'{a} and {b} gave the same features'

@pytest.mark.parametrize('objective', ['triplet', 'supcon'])
def test_metric_objectives_group_classes(objective_runs, objective):
    """Triplet and supervised-contrastive training pull same-class trials together: on trials held out of training, the
    gap between other-class and same-class cosine distances grows well beyond the untrained encoder's
    (about 0.05-0.06 against 0.01 on this data; asserted: above 0.02 and twice the untrained gap)."""
    ds = objective_runs['ds']
    held = np.setdiff1d(np.arange(len(ds)), ds.splits['by_image']['train'])
    y = ds.labels[held]
    before = _class_gap(objective_runs['init_features'][held], y)
    after = _class_gap(objective_runs['runs'][objective]['features'][held], y)
    assert after > max(0.02, 2 * before), f'{objective}: class gap {after:.4f} after training, {before:.4f} before'

def test_checkpoint_checks(tiny, tmp_path):
    enc, _ = _train(tiny, TrainConfig(epochs=1, batch_size=32), out=tmp_path)
    back = load_encoder(tmp_path / 'encoder.pt', tiny)
    assert np.allclose(encode(back, tiny[:4]), encode(enc, tiny[:4]), atol=1e-6)
    with pytest.raises(DataFormatError, match='trained on 32 channels'):
        load_encoder(tmp_path / 'encoder.pt', make_synthetic('tiny', n_chans=16, progress=False))
    shorter = make_synthetic('tiny', n_times=40, progress=False)
    conv, _ = _train(tiny, TrainConfig(epochs=1, batch_size=32), name='conv', out=tmp_path / 'c')
    with pytest.raises(DataFormatError, match='trained on 60 samples'): load_encoder(tmp_path / 'c' / 'encoder.pt', shorter)
    renamed = tiny[:10]; renamed.ch_names = list(reversed(renamed.ch_names))
    with pytest.raises(DataFormatError, match='channel names/order'): load_encoder(tmp_path / 'encoder.pt', renamed)
    (tmp_path / 'trunc.pt').write_bytes((tmp_path / 'encoder.pt').read_bytes()[:500])
    with pytest.raises(DataFormatError, match='corrupt or truncated'): load_checkpoint(tmp_path / 'trunc.pt')

class _Evil:
    def __reduce__(self): return (os.system, ('touch ' + os.environ['B2I_MARKER'],))

def test_code_carrying_checkpoint_refused(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'; monkeypatch.setenv('B2I_MARKER', str(marker))
    torch.save({'kind': 'brain2image.encoder', 'x': _Evil()}, tmp_path / 'evil.pt')
    with pytest.raises(DataFormatError, match='execute code'): load_encoder(tmp_path / 'evil.pt')
    assert not marker.exists()

def test_ddp_two_processes_match_single(tiny, tmp_path):
    "torchrun with 2 CPU processes (gloo) ends where a single process with the same global batch ends."
    if shutil.which('torchrun') is None: pytest.skip('torchrun not on PATH')
    data = tiny.save(tmp_path / 'tiny.b2i')
    args = [str(data), '', '--encoder', 'lstm', '--epochs', '3', '--batch-size', '32', '--patience', '0', '--grad-clip', '0', '--device', 'cpu']
    env = dict(os.environ, OMP_NUM_THREADS='1', BRAIN2IMAGE_DEVICE='cpu')
    for name, cmd in [('single', [sys.executable, '-m', 'brain2image.training']),
                      ('ddp', ['torchrun', '--standalone', '--nproc_per_node', '2', '-m', 'brain2image.training'])]:
        a = list(args); a[1] = str(tmp_path / name)
        r = subprocess.run(cmd + a, capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    hs, hd = [json.loads((tmp_path / n / 'history.json').read_text())['history'] for n in ('single', 'ddp')]
    assert np.allclose([h['val_loss'] for h in hs], [h['val_loss'] for h in hd], rtol=1e-3, atol=1e-4)
    ws, wd = [torch.load(tmp_path / n / 'encoder.pt', weights_only=True)['encoder'] for n in ('single', 'ddp')]
    for k in ws: assert torch.allclose(ws[k], wd[k], atol=1e-4), k
