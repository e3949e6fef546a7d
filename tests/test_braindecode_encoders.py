"The braindecode encoders ('eegnet', 'shallowfbcspnet', 'eegconformer') through make_encoder, on the package as a user imports it."
import importlib.util, sys, warnings
import numpy as np
import pytest, torch
from brain2image.encoders import ENCODERS, make_encoder

NAMES = ['eegnet', 'shallowfbcspnet', 'eegconformer']
needs_braindecode = pytest.mark.skipif(importlib.util.find_spec('braindecode') is None,
                                       reason='braindecode is not installed (pip install braindecode): its encoders cannot be built')
pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module', autouse=True)
def quiet_import():
    "braindecode.models warns about deprecated MNE montage names when first imported."
    if importlib.util.find_spec('braindecode') is not None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); import braindecode.models  # noqa: F401

def test_registered_on_import():
    assert set(NAMES) <= set(ENCODERS)
    with pytest.raises(ValueError, match="unknown encoder 'eeg_net'.*'eegconformer'.*'eegnet'.*'lstm'.*'shallowfbcspnet'"):
        make_encoder('eeg_net', 8, 100, 3)

@pytest.mark.parametrize('name', NAMES)
def test_missing_braindecode_says_how_to_install(name, monkeypatch):
    monkeypatch.setitem(sys.modules, 'braindecode', None)          # `import braindecode` now raises ImportError
    monkeypatch.setitem(sys.modules, 'braindecode.models', None)
    with pytest.raises(ImportError, match='pip install braindecode'):
        make_encoder(name, 8, 250, 3, sfreq=250.0)

@needs_braindecode
@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('C,T,sfreq', [(32, 60, 100.0), (4, 250, 250.0)])
def test_contract(name, C, T, sfreq):
    torch.manual_seed(0)
    enc = make_encoder(name, C, T, 5, feature_dim=40, sfreq=sfreq)
    x = torch.randn(3, C, T)
    f = enc(x)
    assert f.shape == (3, 40) and torch.isfinite(f).all()
    assert enc.classify(x).shape == (3, 5)
    assert enc.proj.in_features == enc.raw_feature_dim == enc.raw_features(x).shape[1]
    enc.zero_grad(); enc.classify(x).logsumexp(1).sum().backward()
    assert [n for n, p in enc.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()] == []
    assert any(float(p.grad.abs().sum()) > 0 for n, p in enc.named_parameters() if n.startswith('model.'))   # braindecode's layers learn
    enc.eval()
    twin = make_encoder(**enc.config).eval(); twin.load_state_dict(enc.state_dict())
    torch.testing.assert_close(twin(x), enc(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=f'{C} channels'): enc(torch.randn(3, C + 1, T))
    with pytest.raises(ValueError, match=f'built for {T} samples'): enc(torch.randn(3, C, T + 1))

@needs_braindecode
def test_time_constants_scale_with_sfreq_and_short_trials_are_refused():
    with pytest.raises(ValueError, match='pass sfreq'): make_encoder('shallowfbcspnet', 32, 60, 4)   # 25 + 75 samples (250 Hz defaults)
    with pytest.raises(ValueError, match='pass sfreq'): make_encoder('eegconformer', 32, 60, 4)
    m = make_encoder('shallowfbcspnet', 32, 60, 4, sfreq=100.0).model
    assert (m.conv_time_spat.conv_time.kernel_size[0], m.pool.kernel_size[0], m.pool.stride[0]) == (10, 30, 6)
    assert make_encoder('eegnet', 8, 128, 4).model.conv_temporal.kernel_size[1] == 64        # braindecode's default, 128 Hz
    assert make_encoder('eegnet', 8, 128, 4, sfreq=64).model.conv_temporal.kernel_size[1] == 32
    assert make_encoder('eegnet', 8, 128, 4, sfreq=64, kernel_length=9).model.conv_temporal.kernel_size[1] == 9   # explicit wins
    with pytest.raises(ValueError, match='divisible'): make_encoder('eegconformer', 8, 250, 4, num_heads=3)

@needs_braindecode
@pytest.mark.parametrize('name', NAMES)
def test_trains_with_train_encoder(name, tiny):
    from brain2image.training import train_encoder, TrainConfig
    torch.manual_seed(0)
    enc = make_encoder(name, tiny.n_chans, tiny.n_times, tiny.n_classes, sfreq=tiny.sfreq)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    r = train_encoder(enc, tiny, TrainConfig(epochs=2, batch_size=32, patience=0, seed=0), progress=False, device='cpu')
    losses = [h['train_loss'] for h in r.history]
    assert len(losses) == 2 and np.isfinite(losses).all(), losses
    assert any(not torch.equal(before[k], v) for k, v in enc.state_dict().items() if k.startswith('model.'))

@pytest.mark.parametrize('name', NAMES)
def test_pipeline_config_accepts_the_names(name):
    from brain2image.config import validate_config, get_preset
    cfg = get_preset('tiny'); cfg['encoder'] = dict(cfg['encoder'], arch=name, options=dict(sfreq=100.0, feature_activation='relu'))
    assert validate_config(cfg)['encoder']['arch'] == name
    cfg['encoder']['options'] = dict(hidden_size=8)
    with pytest.raises(ValueError, match='hidden_size'): validate_config(cfg)

@needs_braindecode
@pytest.mark.parametrize('name', ['shallowfbcspnet', 'eegconformer'])
def test_pipeline_gives_the_data_rate(name, tmp_path):
    "The run passes the preprocessed data's sampling rate, so time-set kernels fit the tiny preset's short trials without options."
    from brain2image.config import get_preset
    from brain2image.pipeline import run
    cfg = get_preset('tiny'); cfg['encoder'] = dict(cfg['encoder'], arch=name)
    assert run(cfg, out=tmp_path / 'r', dry_run=True, progress=False)['dry_run']
    torch.manual_seed(0)
    with pytest.raises(ValueError, match='pass sfreq'): make_encoder(name, 32, 20, 4)   # without the rate: braindecode's 250 Hz kernels
