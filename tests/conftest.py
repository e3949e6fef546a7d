import os
import pytest
from brain2image.core import shared_data_dir

os.environ.setdefault('MPLBACKEND', 'Agg')

@pytest.fixture(scope='module')
def one_thread():
    "One torch thread for a module (use with pytestmark): on 2 shared cores, 2 threads per process ran 5-8x slower under load."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='session')
def shared_data():
    "The real EEG beside the project (../shared/data); skips the test where it is absent."
    root = shared_data_dir()
    if root is None:
        pytest.skip('../shared/data not found (set BRAIN2IMAGE_SHARED_DATA): real-data test skipped')
    return root

# --- the tiny synthetic dataset (4 classes x 4 stimulus images, 320 trials x 32 channels x 60 samples) ---------------
# Module-scoped: each test module gets its own copy (as when every module built it), so a test that edits the
# dataset cannot leak into another module; make_synthetic('tiny') takes well under a second.
@pytest.fixture(scope='module')
def tiny():
    "The tiny synthetic preset (block design, seed 0), as `make_synthetic('tiny')` makes it."
    from brain2image.synthetic import make_synthetic
    return make_synthetic('tiny', progress=False)

@pytest.fixture(scope='module')
def tiny_standardised():
    "The tiny preset with every channel standardised over trials and time (what encoder training expects)."
    from brain2image.synthetic import make_synthetic
    ds = make_synthetic('tiny', progress=False)
    ds.eeg = (ds.eeg - ds.eeg.mean((0, 2), keepdims=True)) / ds.eeg.std((0, 2), keepdims=True)
    return ds

@pytest.fixture(scope='module')
def tiny_designs():
    "The tiny preset in both designs: {'block': ..., 'random': ...}."
    from brain2image.synthetic import make_synthetic
    return {d: make_synthetic('tiny', design=d, progress=False) for d in ('block', 'random')}

@pytest.fixture(scope='module')
def tiny_onehot():
    "(tiny dataset, its one-hot class codes [320, 4]): a stand-in for encoder posteriors as generator conditions."
    import torch, torch.nn.functional as F
    from brain2image.synthetic import make_synthetic
    ds = make_synthetic('tiny', progress=False)
    return ds, F.one_hot(torch.from_numpy(ds.labels), ds.n_classes).float()

@pytest.fixture(scope='module')
def judge(tiny):
    "A judge trained on the tiny preset's 16 stimulus images (one held out per class); a few seconds on one thread."
    from brain2image.judge import train_judge
    return train_judge(tiny, epochs=60, holdout_per_class=1, augment='strong', batch_size=4, seed=0)

@pytest.fixture(scope='module')
def stim(tiny):
    "The tiny preset's stimulus images as float [N, 3, 32, 32] in [-1, 1]."
    from brain2image.image_classifier import images_to_tensor
    return images_to_tensor(tiny.images, 32)

def pytest_configure(config):
    config.addinivalue_line('markers', 'browser: real JupyterLab + headless chromium (tools/browser_setup.sh)')
    config.addinivalue_line('markers', 'slow: long test; runs when BRAIN2IMAGE_SLOW=1 (tools/test.sh and CI set it)')

def pytest_collection_modifyitems(config, items):
    if os.environ.get('BRAIN2IMAGE_SLOW') == '1': return
    skip = pytest.mark.skip(reason='slow: set BRAIN2IMAGE_SLOW=1 to run')
    for it in items:
        if 'slow' in it.keywords: it.add_marker(skip)
