"""Pure functions shared by every algorithm: masks, TD targets, conservative and divergence terms,
the expectile loss and advantage weights of in-sample methods.

Conventions, for every function below:

- agents live on axis 1 and actions on the last axis: Q-values and logits are (B, N, A), actions,
  rewards and masks over agents are (B, N);
- `action_mask` is a bool tensor (B, N, A), True for a legal action; every agent has at least one
  legal action (padded agents are all-legal);
- `alive` is a bool tensor (B, N); averages over agents are taken over alive agents only, with
  `torch.where` (never a product), so a NaN or infinity computed for a dead or padded agent cannot
  leak into a loss;
- illegal actions are set to −inf *before* any reduction over actions (the seed's code took the
  logsumexp over an already-masked Q, which let illegal actions count);
- log-probabilities of illegal actions are `ILLEGAL_LOG_PROB`, a large finite negative number rather
  than −inf: a product 0 · (−inf) is NaN and so is its gradient, even behind a `torch.where`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: log π(a) of an illegal action: exp() of it is exactly 0 in float32, yet 0 times it is 0.
ILLEGAL_LOG_PROB = -1e9


def mask_illegal(values: Tensor, action_mask: Tensor) -> Tensor:
    """`values` (…, A) with illegal actions set to −inf."""
    return values.masked_fill(~action_mask, float("-inf"))


def masked_argmax(values: Tensor, action_mask: Tensor) -> Tensor:
    """Index of the largest legal value along the last axis.

    Args:
        values: (…, A).
        action_mask: (…, A) bool.

    Returns:
        (…) int64; never an illegal action when one action is legal.
    """
    return mask_illegal(values, action_mask).argmax(dim=-1)


def masked_logsumexp(values: Tensor, action_mask: Tensor) -> Tensor:
    """log Σ_{a legal} exp(values[a]) along the last axis: (…, A) -> (…)."""
    return torch.logsumexp(mask_illegal(values, action_mask), dim=-1)


def masked_log_softmax(logits: Tensor, action_mask: Tensor) -> Tensor:
    """Log-probabilities of the softmax over legal actions; `ILLEGAL_LOG_PROB` for illegal ones."""
    log_probs = torch.log_softmax(mask_illegal(logits, action_mask), dim=-1)  # (…, A)
    return log_probs.masked_fill(~action_mask, ILLEGAL_LOG_PROB)


def masked_softmax(logits: Tensor, action_mask: Tensor) -> Tensor:
    """Softmax over legal actions; exactly 0 for illegal ones. (…, A)."""
    return torch.softmax(mask_illegal(logits, action_mask), dim=-1)


def expectation(probs: Tensor, values: Tensor, action_mask: Tensor) -> Tensor:
    """Σ_{a legal} probs[a] · values[a] along the last axis: (…, A) -> (…).

    Illegal entries contribute exactly 0, with a zero gradient, whatever `values` holds there
    (±inf or NaN included): they are replaced before the product, not after.
    """
    return (probs * values.masked_fill(~action_mask, 0.0)).masked_fill(~action_mask, 0.0).sum(-1)


def masked_mean(values: Tensor, alive: Tensor) -> Tensor:
    """Mean of `values` (B, N) over alive agents; 0 when no agent is alive."""
    total = torch.where(alive, values, 0.0).sum()
    return total / alive.sum().clamp(min=1)


def gather_actions(values: Tensor, actions: Tensor) -> Tensor:
    """values[…, actions]: (B, N, A) and (B, N) int64 -> (B, N)."""
    return values.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def td_target(
    rewards: Tensor,
    bootstrap: Tensor,
    gamma: float,
    next_q_online: Tensor,
    next_q_target: Tensor,
    next_action_mask: Tensor,
) -> Tensor:
    """Double-DQN target r + γ · bootstrap · Q_target(s', argmax_{a' legal} Q_online(s', a')).

    Args:
        rewards: (B, N).
        bootstrap: (B, N) float or bool, 1 where the next observation continues the episode
            (see `algos.data.bootstrap_mask`).
        gamma: discount.
        next_q_online: (B, N, A) Q-values of the online network at s' (selects the action).
        next_q_target: (B, N, A) Q-values of the target network at s' (evaluates it).
        next_action_mask: (B, N, A) bool legal actions at s'.

    Returns:
        (B, N) targets, without gradient.
    """
    with torch.no_grad():
        next_actions = masked_argmax(next_q_online, next_action_mask)  # (B, N)
        next_value = gather_actions(next_q_target, next_actions)  # (B, N)
        # Where bootstrap is 0 the next value is dropped with `where`: a dead agent's zero
        # observation may give any value, and 0 · inf would be NaN.
        return rewards + gamma * torch.where(bootstrap.bool(), next_value, 0.0)


def twin_td_loss(q: Tensor, actions: Tensor, target: Tensor, alive: Tensor) -> Tensor:
    """Σ over the critics of the mean over alive agents of ½ (Q_i(s, a_data) − y)².

    Args:
        q: (C, B, N, A) every critic's Q-values (C = 2 for twin critics).
        actions: (B, N) dataset actions.
        target: (B, N) targets without gradient.
        alive: (B, N) bool.
    """
    q_data = gather_actions(q, actions.expand(len(q), *actions.shape))  # (C, B, N)
    errors = 0.5 * (q_data - target) ** 2
    return sum(masked_mean(errors[i], alive) for i in range(len(q)))


def cql_term(q: Tensor, actions: Tensor, action_mask: Tensor, alive: Tensor) -> Tensor:
    """Discrete CQL term: mean over alive agents of logsumexp_{a legal} Q(s, a) − Q(s, a_data).

    Kumar et al. 2020, eq. (4) with the CQL(H) choice of regulariser; exact for discrete actions.

    Args:
        q: (B, N, A) Q-values (with gradient).
        actions: (B, N) int64 dataset actions.
        action_mask: (B, N, A) bool legal actions.
        alive: (B, N) bool.

    Returns:
        A scalar (≥ 0 up to the log of the number of legal actions' spread).
    """
    gap = masked_logsumexp(q, action_mask) - gather_actions(q, actions)  # (B, N)
    return masked_mean(gap, alive)


def discrete_soft_value(
    probs: Tensor, log_probs: Tensor, q: Tensor, alpha: float | Tensor, action_mask: Tensor
) -> Tensor:
    """Soft state value V(s) = Σ_{a legal} π(a|s) [Q(s, a) − α log π(a|s)]: (B, N, A) -> (B, N).

    `q` is typically the element-wise minimum of two target critics (discrete SAC's target).
    """
    return expectation(probs, q - alpha * log_probs, action_mask)


def discrete_sac_target(
    rewards: Tensor,
    bootstrap: Tensor,
    gamma: float,
    next_probs: Tensor,
    next_log_probs: Tensor,
    next_q: Tensor,
    alpha: float | Tensor,
    next_action_mask: Tensor,
) -> Tensor:
    """Discrete SAC critic target r + γ · bootstrap · Σ_a π(a|s')[Q'(s', a) − α log π(a|s')].

    The expectation is over every legal action (Christodoulou 2019, eq. 10), not a sampled one —
    the seed's code did not sum over actions.

    Args:
        rewards: (B, N).
        bootstrap: (B, N) float or bool.
        gamma: discount.
        next_probs: (B, N, A) π(·|s').
        next_log_probs: (B, N, A) log π(·|s') (−inf for illegal actions is fine).
        next_q: (B, N, A) min over the target critics at s'.
        alpha: entropy temperature.
        next_action_mask: (B, N, A) bool.

    Returns:
        (B, N) targets, without gradient.
    """
    with torch.no_grad():
        value = discrete_soft_value(next_probs, next_log_probs, next_q, alpha, next_action_mask)
        return rewards + gamma * torch.where(bootstrap.bool(), value, 0.0)


def discrete_sac_actor_loss(
    probs: Tensor,
    log_probs: Tensor,
    q: Tensor,
    alpha: float | Tensor,
    action_mask: Tensor,
    alive: Tensor,
) -> Tensor:
    """Mean over alive agents of Σ_{a legal} π(a|s)[α log π(a|s) − Q(s, a)] (Q without gradient)."""
    per_agent = expectation(probs, alpha * log_probs - q.detach(), action_mask)  # (B, N)
    return masked_mean(per_agent, alive)


def entropy(probs: Tensor, log_probs: Tensor, action_mask: Tensor) -> Tensor:
    """−Σ_{a legal} π(a) log π(a): (…, A) -> (…)."""
    return -expectation(probs, log_probs, action_mask)


def categorical_kl(
    log_p: Tensor, log_q: Tensor, action_mask: Tensor, p: Tensor | None = None
) -> Tensor:
    """Exact KL(p ‖ q) = Σ_{a legal} p(a) [log p(a) − log q(a)]: (…, A) -> (…).

    Args:
        log_p: (…, A) log-probabilities of p (any value where p is 0).
        log_q: (…, A) log-probabilities of q; must be finite wherever p > 0.
        action_mask: (…, A) bool, the actions summed over.
        p: the probabilities of p when already computed (else exp(log_p)).
    """
    p = log_p.exp() if p is None else p
    support = action_mask & (p > 0)
    # Replace before subtracting and multiplying, so neither the value nor its gradient is NaN.
    log_ratio = log_p.masked_fill(~support, 0.0) - log_q.masked_fill(~support, 0.0)
    return (p * log_ratio).masked_fill(~support, 0.0).sum(-1)


def gaussian_action_kernel(n_actions: int, sigma: float) -> Tensor:
    """The Gaussian kernel between one-hot actions: K[a, b] = exp(−‖e_a − e_b‖² / (2σ²)).

    For one-hot actions ‖e_a − e_b‖² is 2 when a ≠ b, so K = 1 on the diagonal and exp(−1/σ²)
    elsewhere. Returns (A, A) float32.
    """
    off_diagonal = torch.exp(torch.tensor(-1.0 / sigma**2))
    kernel = torch.full((n_actions, n_actions), float(off_diagonal))
    return kernel.fill_diagonal_(1.0)


def discrete_mmd(p: Tensor, q: Tensor, kernel: Tensor) -> Tensor:
    """Closed-form squared MMD between two categorical distributions: (p − q)ᵀ K (p − q).

    Args:
        p: (…, A) probabilities (0 on illegal actions).
        q: (…, A) probabilities.
        kernel: (A, A) positive semi-definite kernel between actions.

    Returns:
        (…) non-negative; 0 when p = q.
    """
    diff = p - q  # (…, A)
    return ((diff @ kernel) * diff).sum(-1)


def support_mask(behaviour_probs: Tensor, threshold: float, action_mask: Tensor) -> Tensor:
    """Actions in the behaviour's support: legal and β(a) > threshold · max_a β(a). (…, A) bool."""
    peak = torch.where(action_mask, behaviour_probs, 0.0).amax(dim=-1, keepdim=True)
    return action_mask & (behaviour_probs > threshold * peak)


def out_of_support_mass(
    probs: Tensor, behaviour_probs: Tensor, threshold: float, action_mask: Tensor
) -> Tensor:
    """Probability π puts on legal actions outside the behaviour's support. (…, A) -> (…)."""
    outside = action_mask & ~support_mask(behaviour_probs, threshold, action_mask)
    return torch.where(outside, probs, 0.0).sum(-1)


def masked_attention(
    query: Tensor, key: Tensor, value: Tensor, key_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Multi-head scaled dot-product attention over the keys that `key_mask` allows.

    The one mask rule of every attention over agents (`algos.coordination`, `algos.qmix`): each
    query attends only to allowed keys (alive agents, or its neighbours), with weights
    softmax(q · k / √D) over them and exactly 0 on the others; a query with no allowed key (a
    team with nobody alive) gets all weights 0, hence an output of 0 — finite, and with finite
    gradients (no softmax over −inf alone, whose NaN would reach the gradients even behind a
    `torch.where`).

    Two layouts: every query over the same Nk keys (dense), or each query over its own K keys,
    gathered beforehand (a neighbourhood per agent: the cost grows with Nq · K, not Nq · Nk).

    Args:
        query: (B, heads, Nq, D).
        key: (B, heads, Nk, D) shared keys, or (B, heads, Nq, K, D) each query's own.
        value: (B, heads, Nk, Dv), or (B, heads, Nq, K, Dv), as `key`.
        key_mask: (B, Nk) bool, the keys that may be attended to; (B, Nq, K) with own keys.

    Returns:
        (outputs (B, heads, Nq, Dv), weights (B, heads, Nq, Nk) or (B, heads, Nq, K)).
    """
    shared = key.dim() == query.dim()
    if shared:
        scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])  # (B, heads, Nq, Nk)
        allowed = key_mask[:, None, None, :]  # (B, 1, 1, Nk)
    else:
        scores = (query.unsqueeze(-2) @ key.transpose(-1, -2)).squeeze(-2)  # (B, heads, Nq, K)
        scores = scores / math.sqrt(query.shape[-1])
        allowed = key_mask[:, None]  # (B, 1, Nq, K)
    # Where no key is allowed the softmax runs over every key (finite) and is then zeroed.
    nothing_allowed = ~allowed.any(dim=-1, keepdim=True)
    scores = scores.masked_fill(~(allowed | nothing_allowed), float("-inf"))
    weights = torch.softmax(scores, dim=-1).masked_fill(~allowed, 0.0)
    if shared:
        return weights @ value, weights
    return (weights.unsqueeze(-2) @ value).squeeze(-2), weights  # (B, heads, Nq, Dv)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging θ_target ← (1 − τ) θ_target + τ θ_source, in place (τ = 1 copies)."""
    for target_param, param in zip(target.parameters(), source.parameters(), strict=True):
        target_param.lerp_(param, tau)
    for target_buffer, buffer in zip(target.buffers(), source.buffers(), strict=True):
        target_buffer.copy_(buffer)


def target_entropy(action_mask: Tensor, spread: float) -> Tensor:
    """An entropy target per agent: the entropy of a policy that puts 1 − δ on one legal action
    and δ = `spread` evenly on the k − 1 others, (…, A) -> (…); δ is capped at (k − 1) / k (the
    uniform policy, log k) and the target is 0 with one legal action.

    −(1 − δ) log(1 − δ) − δ log(δ / (k − 1)). Offline, a policy that follows near-deterministic
    data has little entropy; Christodoulou 2019's online target, 0.98 · log|A|, would force it to
    be near uniform (see the headers of `sac.py` and `bear.py`).
    """
    k = action_mask.sum(-1).to(torch.float64)  # (…)
    delta = torch.minimum(torch.full_like(k, spread), (k - 1) / k)
    keep = 1.0 - delta
    others = torch.where(delta > 0, -delta * torch.log(delta / (k - 1).clamp(min=1)), 0.0)
    entropy = torch.where(keep > 0, -keep * torch.log(keep), 0.0) + others
    return entropy.to(torch.float32)


def dual_ascent_loss(log_multiplier: Tensor, violation: Tensor, alive: Tensor) -> Tensor:
    """Loss whose gradient step is dual ascent on a multiplier λ = exp(`log_multiplier`).

    −log λ · mean over alive agents of `violation` (without gradient), where `violation` is g(s)
    of a constraint g ≤ 0: gradient descent raises λ while the constraint is violated on average
    (g > 0) and lowers it otherwise. Used for SAC's temperature (g = target entropy − entropy)
    and BEAR's Lagrange multiplier (g = divergence − threshold).

    Args:
        log_multiplier: 0-d tensor with gradient.
        violation: (B, N) g per agent.
        alive: (B, N) bool.
    """
    return -log_multiplier * masked_mean(violation.detach(), alive)


def expectile_loss(diff: Tensor, expectile: float) -> Tensor:
    """Asymmetric squared loss |e − 1(diff < 0)| · diff² with e = `expectile` (IQL eq. 5, where
    e is written τ), elementwise.

    With diff = target − prediction, minimising its mean gives the e-expectile of the target
    (e = 0.5: the mean; e → 1: the maximum).
    """
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff.square()


def advantage_weights(advantage: Tensor, beta: float, max_weight: float) -> Tensor:
    """AWR weights min(exp(β · A), w_max), elementwise; β = 0 gives 1 everywhere (plain BC).

    The exponent is clamped first so exp never overflows to inf (0 · inf would be NaN).
    """
    upper = math.log(max_weight)
    return torch.exp((beta * advantage).clamp(max=upper))
