import pytest, torch
from brain2image.core import DataFormatError
from brain2image.synthetic import make_synthetic
from brain2image.preprocess import Preprocessor
from brain2image.encoders import make_encoder
from brain2image.training import TrainConfig, train_encoder
from brain2image.conditioning import eeg_conditions, cond_dim
from brain2image.gan import ConditionalGAN, gan_preset, train_gan
from brain2image.decode import EEGToImage, load_decoder

# Images in [-1, 1] recomputed through a network: equal up to float round-off (BLAS kernels differ with batch, threads, CPU).
close = lambda a, b: torch.allclose(a, b, rtol=1e-5, atol=1e-5)

@pytest.fixture(scope='module')
def decoder():
    raw = make_synthetic('tiny', progress=False)
    pre = Preprocessor(l_freq=1.0, standardize='channel'); ds = pre.fit_transform(raw, progress=False)
    torch.manual_seed(0)
    enc = make_encoder('lstm', ds.n_chans, ds.n_times, ds.n_classes, hidden_size=16)
    train_encoder(enc, ds, TrainConfig(epochs=1, batch_size=64), progress=False)
    cfg, rc = gan_preset('paper', image_size=32, ngf=8, ndf=8, epochs=1)
    gan = ConditionalGAN(cfg, cond_dim(enc, 'feature'), ds.n_classes)
    train_gan(gan, ds, rc, conditions=eeg_conditions(enc, ds, 'feature'), progress=False)
    return raw, EEGToImage(pre, enc, gan, 'feature')

def test_raw_eeg_to_images(decoder):
    raw, dec = decoder
    a = dec(raw[:4], n_samples=3, seed=1)
    assert a.shape == (4, 3, 3, 32, 32) and torch.isfinite(a).all()
    assert close(a, dec(raw[:4], n_samples=3, seed=1)) and not close(a, dec(raw[:4], n_samples=3, seed=2))
    assert not close(a[:, 0], a[:, 1])                            # several images from one trial
    one = dec(raw.eeg[0], sfreq=raw.sfreq, ch_names=raw.ch_names, seed=1)
    assert one.shape == (1, 1, 3, 32, 32)

@pytest.mark.parametrize('change, msg', [
    (lambda r: dict(eeg=r.eeg[:2, :-1], sfreq=r.sfreq), 'expected 32 channels'),
    (lambda r: dict(eeg=r.eeg[:2], sfreq=2 * r.sfreq), "field 'sfreq'"),
    (lambda r: dict(eeg=r.eeg[:2, :, 5:], sfreq=r.sfreq), 'epochs of 60 samples'),
    (lambda r: dict(eeg=r.eeg[:2], sfreq=r.sfreq, ch_names=list(reversed(r.ch_names))), 'another order'),
])
def test_refuses_mismatched_eeg(decoder, change, msg):
    raw, dec = decoder
    kw = change(raw); eeg = kw.pop('eeg')
    with pytest.raises(DataFormatError, match=msg): dec(eeg, **kw)

def test_save_load(decoder, tmp_path):
    raw, dec = decoder
    dec.save(tmp_path / 'dec')
    torch.testing.assert_close(load_decoder(tmp_path / 'dec')(raw[:2], seed=3), dec(raw[:2], seed=3), rtol=1e-5, atol=1e-5)
    (tmp_path / 'dec' / 'decoder.json').write_text('{')
    with pytest.raises(DataFormatError, match='decoder.json'): load_decoder(tmp_path / 'dec')
