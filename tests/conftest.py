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

def pytest_configure(config):
    config.addinivalue_line('markers', 'browser: real JupyterLab + headless chromium (tools/browser_setup.sh)')
    config.addinivalue_line('markers', 'slow: long test; runs when BRAIN2IMAGE_SLOW=1 (tools/test.sh and CI set it)')

def pytest_collection_modifyitems(config, items):
    if os.environ.get('BRAIN2IMAGE_SLOW') == '1': return
    skip = pytest.mark.skip(reason='slow: set BRAIN2IMAGE_SLOW=1 to run')
    for it in items:
        if 'slow' in it.keywords: it.add_marker(skip)
