"""The word2vec, RBM and SOM modules against exact answers on tiny cases."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from genlab.models.rbm import RBM
from genlab.models.som import SOM
from genlab.models.word2vec import Word2Vec, negative_sampling_loss


# -- word2vec ------------------------------------------------------------------------------------------
def test_negative_sampling_loss_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    h, pos, neg = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g), torch.randn(4, 3, 6, generator=g)
    want = torch.tensor([-math.log(torch.sigmoid(h[i] @ pos[i]))
                         - sum(math.log(torch.sigmoid(-(h[i] @ neg[i, k]))) for k in range(3)) for i in range(4)])
    assert torch.allclose(negative_sampling_loss(h, pos, neg), want, atol=1e-5)


@pytest.mark.parametrize("cbow", [False, True])
def test_untrained_word2vec_scores_log2_per_pair_and_masks_padding(cbow):
    torch.manual_seed(0)
    m = Word2Vec(50, 8, cbow=cbow)
    centre, context = torch.randint(0, 50, (5,)), torch.randint(0, 50, (5, 4))
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[0] = False       # a centre with no context: no pair
    mask[1, 2:] = False
    negatives = torch.randint(0, 50, (5, 3) if cbow else (5, 4, 3))
    total, pairs = m(centre, context, mask, negatives)
    assert pairs.item() == (4 if cbow else 14)
    assert total.item() == pytest.approx(pairs.item() * 4 * math.log(2), rel=1e-5)  # zero output vectors
    total.backward()
    assert m.inp.weight.grad.is_sparse and m.out.weight.grad.is_sparse


# -- RBM -------------------------------------------------------------------------------------------------
def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def tiny_rbm(nv: int = 3, nh: int = 2, seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(nv, nh)
    with torch.no_grad():
        rbm.W.normal_(0, 1.0), rbm.b.normal_(0, 0.5), rbm.c.normal_(0, 0.5)
    return rbm


def exact_log_p(rbm: RBM, v: torch.Tensor) -> torch.Tensor:
    """log p(v) by enumerating every visible and hidden state (energy, not free energy)."""
    vs, hs = states(rbm.W.shape[0]), states(rbm.W.shape[1])
    neg_e = lambda v_, h_: v_ @ rbm.b + h_ @ rbm.c + ((v_ @ rbm.W) * h_).sum(-1)  # noqa: E731
    log_z = torch.logsumexp(torch.stack([neg_e(a[None], h[None]) for a in vs for h in hs]).flatten(), 0)
    log_pv = torch.stack([torch.logsumexp(torch.stack([neg_e(x[None], h[None]) for h in hs]).flatten(), 0)
                          for x in v])
    return log_pv - log_z


def test_free_energy_and_pseudo_likelihood_match_enumeration():
    rbm, vs = tiny_rbm(), states(3)
    log_p = exact_log_p(rbm, vs).detach()
    assert torch.allclose(-rbm.free_energy(vs) - torch.logsumexp(-rbm.free_energy(vs), 0), log_p, atol=1e-5)
    p = log_p.exp()
    for v in vs:  # log p(v_i | v_-i) = log p(v) - log(p(v) + p(v with bit i flipped))
        want = 0.0
        for i in range(3):
            flipped = v.clone()
            flipped[i] = 1 - flipped[i]
            j, k = [int("".join(str(int(b)) for b in x.tolist()), 2) for x in (v, flipped)]
            want += math.log(float(p[j] / (p[j] + p[k])))
        assert rbm.pseudo_log_likelihood(v[None]).item() == pytest.approx(want, abs=1e-5)


def test_cd_on_exact_expectations_is_the_exact_gradient_and_long_chains_approach_it():
    """3 visible / 2 hidden: the log-likelihood gradient by enumeration equals minus the gradient
    of cd_loss with the model's exact distribution as negative phase; CD-k with many chains and
    large k estimates it."""
    rbm, vs = tiny_rbm(), states(3)
    data = vs[[1, 5, 6, 6, 7]]
    exact = torch.autograd.grad(exact_log_p(rbm, data).mean(), [rbm.W, rbm.b, rbm.c])
    with torch.no_grad():
        p_model = torch.softmax(-rbm.free_energy(vs), 0)
    cd = torch.autograd.grad(rbm.cd_loss(data, vs, model_weights=p_model), [rbm.W, rbm.b, rbm.c])
    for e, c in zip(exact, cd):
        assert torch.allclose(e, -c, atol=1e-5)

    g = torch.Generator().manual_seed(0)
    start = data.repeat(4000, 1)
    sampled = torch.autograd.grad(rbm.cd_loss(start, rbm.gibbs(start, 30, generator=g)), [rbm.W, rbm.b, rbm.c])
    for e, c in zip(exact, sampled):
        assert torch.allclose(e, -c, atol=0.03)


def test_ais_estimates_log_z_of_a_small_rbm():
    rbm = tiny_rbm(10, 4, seed=1)
    with torch.no_grad():
        rbm.W.mul_(0.5)
        exact = torch.logsumexp(-rbm.free_energy(states(10)), 0).item()
        est = rbm.ais_log_z(n_chains=200, n_betas=500, generator=torch.Generator().manual_seed(0))
    assert est == pytest.approx(exact, abs=0.1)


# -- SOM -----------------------------------------------------------------------------------------------
def test_som_errors_and_u_matrix_by_hand():
    som = SOM(1, 3, 1)
    som.codebook.data = torch.tensor([[0.0], [1.0], [3.0]])
    x = torch.tensor([[0.2], [2.4], [0.6]])
    assert som.quantization_error(x) == pytest.approx((0.2 + 0.6 + 0.4) / 3, abs=1e-6)
    som.codebook.data = torch.tensor([[0.0], [3.0], [1.0]])  # 0 and 1 are no longer grid neighbours
    assert som.topographic_error(torch.tensor([[0.4], [2.9]])) == pytest.approx(0.5)
    assert torch.allclose(som.u_matrix(), torch.tensor([[3.0, 2.5, 2.0]]))


def test_som_update_pulls_the_winner_most():
    som = SOM(1, 5, 2)
    som.codebook.data = torch.zeros(5, 2)
    som.update(torch.tensor([[1.0, 1.0]]), lr=0.5, sigma=1.0)  # ties: unit 0 wins
    moved = som.codebook[:, 0]
    assert moved[0].item() == pytest.approx(0.5) and torch.all(moved[:-1] > moved[1:])
