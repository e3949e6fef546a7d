"Test helpers shared by the training tests (not a test module)."
import torch

def same_weights(a, b, rtol=1e-4, atol=1e-5) -> bool:
    """Two trained models' state_dicts agree entry by entry: float tensors up to the round-off of a repeated or resumed run (BLAS
    kernels differ with batch, threads and CPU), integer buffers (BatchNorm's num_batches_tracked) exactly."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(v, sb[k], rtol=rtol, atol=atol) if v.is_floating_point() else torch.equal(v, sb[k])
                                          for k, v in sa.items())

def assert_same_weights(a, b, rtol=1e-4, atol=1e-5):
    "As `same_weights`, naming the first entry that differs. Another seed, or a resume that was ignored, moves the weights far more."
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        if v.is_floating_point(): torch.testing.assert_close(v, sb[k], rtol=rtol, atol=atol, msg=lambda m: f'{k}: {m}')
        else: assert torch.equal(v, sb[k]), k
