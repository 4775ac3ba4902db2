"""Low-rank factorization (truncated SVD; Denton et al., NeurIPS'14; Jaderberg et al., BMVC'14):
each Linear and Conv2d layer as two thinner ones, a minimum to retrain and compare.

    small = factorize(model, rank_ratio=0.5)       # or energy=0.9; a new network
    ranks(small)                                   # {"features.3": 16, "fc": 5, ...}

``landscape-lowrank CKPT --arch A --rank-ratio R --out OUT.pt`` writes a checkpoint that records
its ranks (:mod:`landscape.lowrank.checkpoints`), so every command loads it as it loads a pruned
one; ``landscape-train --init-from OUT.pt`` retrains it.
"""

from landscape.lowrank.checkpoints import lowrank_of, ranks_of, save_factorized
from landscape.lowrank.factorize import (
    LowRank,
    apply_ranks_,
    check_ratio,
    choose_rank,
    factorize,
    factorize_layer,
    ranks,
    saves_weights,
    unfactorized_names,
)

__all__ = ["LowRank", "apply_ranks_", "check_ratio", "choose_rank", "factorize", "factorize_layer", "lowrank_of",
           "ranks", "ranks_of", "save_factorized", "saves_weights", "unfactorized_names"]
