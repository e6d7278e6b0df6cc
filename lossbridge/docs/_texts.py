"""The site's prose: what no spec declares (the introduction, what each task is about, the optimizer story).

Which specs are recommended where is never written here: it comes from each spec's task tags and
usage text.
"""

from __future__ import annotations

__all__ = ["FRAMEWORK_BACKENDS", "OPTIMIZER_INTRO", "SITE_INTRO", "TASK_INTROS"]

#: framework (a convention name) -> the lossbridge backend that builds that framework's objects
FRAMEWORK_BACKENDS = {"torch": "torch", "keras": "tensorflow", "optax": "jax"}

SITE_INTRO = """# lossbridge: the guide

The same loss or optimizer name gives different numbers in PyTorch, Keras and Optax: Adam adds `eps`
in a different place, binary cross-entropy clips differently, AdamW decays by a different default.
lossbridge defines every loss, optimizer and learning-rate schedule **once**, as math over the Python
Array API, and hands you that one definition as the native object of NumPy, PyTorch,
TensorFlow/Keras or JAX. Each framework's behaviour is a named **convention** of that definition.

Every page of this site is generated from the specs installed when it was built: the formula, the
parameters, the frameworks' names, what each convention changes, pictures drawn with the NumPy
backend, and a usage snippet per backend that ran during the build (its output is shown under it).
Use the search box to find a spec by any of its names."""

#: task tag -> (title, what the task is and what to weigh when choosing)
TASK_INTROS = {
    "regression": (
        "Regression",
        "Predicting real values. The loss sets which statistic the model estimates: squared error the "
        "conditional mean (sensitive to outliers, which dominate the squares), absolute error the median "
        "(robust, but a constant-size gradient), Huber and log-cosh something in between; quantile losses "
        "give prediction intervals. Targets spanning orders of magnitude call for a log or relative error.",
    ),
    "binary": (
        "Binary classification",
        "Two classes. Cross-entropy (log loss) gives calibrated probabilities; compute it from logits for "
        "stability rather than from probabilities. Margin losses (hinge) care only about the decision "
        "boundary, as support vector machines do. Conventions differ in clipping of probabilities and "
        "in the label encoding ({0, 1} or {-1, 1}).",
    ),
    "multilabel": (
        "Multi-label classification",
        "Several independent yes/no labels per sample: one binary loss per label, averaged. Class "
        "imbalance between labels is common; focal variants and per-label weights address it.",
    ),
    "multiclass": (
        "Multiclass classification",
        "Exactly one class out of many. Softmax cross-entropy is the default; the target may be a class "
        "index (sparse) or a distribution (one-hot, label smoothing). For imbalanced classes use class "
        "weights (the shared `class_weight` parameter) or a focal loss, which down-weights easy examples.",
    ),
    "imbalanced": (
        "Imbalanced classes",
        "When one class is rare, an unweighted loss is dominated by the common one. Two remedies: weight "
        "the classes (the shared `class_weight` parameter, PyTorch's `weight`, or `pos_weight` for binary "
        "cross-entropy), or use a focal loss, which scales each term by how badly it is predicted so easy, "
        "mostly majority-class examples count less. Overlap losses (Dice) are insensitive to the imbalance "
        "by construction. The losses below take class weights, or say in their notes that they address it.",
    ),
    "segmentation": (
        "Segmentation",
        "A class per pixel: per-pixel cross-entropy, often combined with an overlap loss (Dice, Tversky) "
        "that is insensitive to how rare the foreground is. Watch where each framework puts the class axis.",
    ),
    "sequence": (
        "Sequences",
        "Outputs aligned with, or not aligned with, the input sequence: per-step cross-entropy with "
        "ignored padding labels, or CTC when the alignment is unknown (speech, handwriting).",
    ),
    "ranking": (
        "Ranking",
        "Ordering items by relevance: pairwise margins between a better and a worse item, or listwise "
        "softmax losses over a query's candidates.",
    ),
    "metric_learning": (
        "Metric learning",
        "Embeddings whose distances mean similarity: pairs (contrastive, cosine embedding), triplets, "
        "and batch-level losses that compare every pair in a batch (NT-Xent, circle loss).",
    ),
    "probabilistic": (
        "Probabilistic outputs",
        "The model predicts a distribution (its parameters, or class probabilities compared with a target "
        "distribution): negative log-likelihoods (Gaussian, Poisson) and divergences (KL).",
    ),
}

OPTIMIZER_INTRO = """# Choosing an optimizer and a schedule

**Gradient descent** moves the parameters against the gradient of the loss, scaled by a learning rate.
*Full-batch* (batch) gradient descent computes the gradient on the whole training set each step: exact,
but every step costs a pass over the data. *Stochastic* gradient descent uses one example and
*mini-batch* gradient descent a small batch (32 to a few thousand): noisy gradients, far cheaper steps,
and the noise helps escape poor regions. Mini-batch SGD is what "SGD" means in every framework here;
the batch is your data loader's choice, not the optimizer's.

**Momentum** averages past gradients so steps build speed along consistent directions and damp
oscillation across ill-conditioned valleys (the quadratic in the pictures); Nesterov's variant looks
one step ahead. **Adaptive methods** scale each coordinate by a running estimate of its gradient
magnitude: Adagrad (sum of squares, for sparse features), RMSprop (a moving average), and **Adam**
(momentum plus RMSprop with bias correction), the default first choice for deep networks. What came
after mostly fixes Adam: AdamW decouples weight decay from the adaptive scaling, AMSGrad and Yogi keep
the second moment from shrinking too fast, RAdam rectifies the early steps, Lion uses only the sign of
an interpolated momentum (less memory), LAMB and LARS scale steps per layer for very large batches,
and Adafactor and SM3 factor the second moment to save memory.

**Schedules** change the learning rate over training: a linear warmup avoids early instability
(especially for Adam and transformers), then a decay (cosine, exponential, step, polynomial) lets the
parameters settle. The one-cycle policy and cyclical rates trade some tuning for speed.

The same name differs between frameworks (where Adam adds `eps`, Keras's float32 hyperparameters,
AdamW's default decay, where SGD keeps the learning rate relative to the momentum buffer): each
optimizer's page shows the trajectories each convention takes from the same start, and the
porting pages list the differences."""
