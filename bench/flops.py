"""Floating-point operations of the matrix products in one glial training minibatch, counted analytically.

A multiply-add counts as 2 operations. Only matrix products (matrix-matrix and
matrix-vector) are counted, the way `microglia.glia.GlialLearner.wake` forms them. The
element-wise work (neurons, traces, pseudo-derivatives, softmax, consolidation) is left
out, so the count divided by the time is a lower bound on the work done per second.
"""

from __future__ import annotations

from microglia.glia import FeedbackKind


def glial_training_flops(
    sizes: list[int],
    steps: int,
    batch_size: int,
    feedback: FeedbackKind | str,
    *,
    burn_in: int = 0,
    constant_input: bool = True,
) -> int:
    """Count the matrix-product operations of one `wake` on a network `sizes` `[F, N_1, ..., C]`.

    Args:
        sizes: layer widths, input first, classes last.
        steps: time steps T of the minibatch.
        batch_size: samples B in the minibatch.
        feedback: the feedback kind, which decides the products of the feedback pathway.
        burn_in: steps at the start without error; they enter no feedback or update product.
        constant_input: whether the input is direct current, whose first-layer current and
            update are computed once per minibatch.
    """
    feedback = FeedbackKind(feedback)
    n_classes = sizes[-1]
    hidden = sizes[1:-1]
    pre_widths = sizes[:-1]
    post_widths = sizes[1:]
    scored_steps = steps - burn_in

    flops = 0

    # forward currents: the first layer once for a constant input, every layer every step otherwise
    for layer, (n_pre, n_post) in enumerate(zip(pre_widths, post_widths)):
        repeats = 1 if layer == 0 and constant_input else steps
        flops += 2 * repeats * batch_size * n_pre * n_post

    # feedback pathway: learning signals for the scored steps
    per_step = 0
    if feedback is FeedbackKind.DIRECT:
        per_step = sum(2 * batch_size * n_classes * width for width in hidden)
    else:
        for n_pre, n_post in zip(pre_widths[1:], post_widths[1:]):
            per_step += 2 * batch_size * n_post * n_pre
    flops += scored_steps * per_step

    # updates: weight products over the scored steps, plus matrix-vector products for biases
    for layer, (n_pre, n_post) in enumerate(zip(pre_widths, post_widths)):
        if layer == 0 and constant_input:
            flops += 2 * scored_steps * batch_size * n_post  # chunk coefficients times signals
            flops += 2 * batch_size * n_post * n_pre  # the one product with the input
        else:
            flops += 2 * scored_steps * batch_size * n_post * n_pre
            flops += 2 * scored_steps * n_post
    return flops
