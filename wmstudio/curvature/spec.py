"""What a curvature job measures (loss, layer, eigenvalues, probes), checked: torch-free, so the CLI's
parser and the config read it without importing PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

from wmstudio.errors import ConfigError

LOSSES = ("clean", "trigger")
ATTR = "curvature_json"
MAX_PRODUCTS = 100_000


@dataclass
class CurvatureSpec:
    loss: str = "clean"  # clean | trigger
    layer: str = ""  # a module's name: that layer's parameters only ("": the whole model)
    top_k: int = 1
    probes: int = 10  # Hutchinson vectors for the trace (0: no trace)
    density_probes: int = 0  # SLQ vectors (0: no density)
    density_steps: int = 40
    images: int = 1000  # clean images (0: all test images); the trigger loss uses the whole trigger set
    max_iter: int = 100  # Lanczos steps at most
    tol: float = 1e-3  # Lanczos stops when each top value's residual bound is below tol x its size
    seed: int = 0
    batch_size: int = 500

    @property
    def key(self) -> str:
        return self.loss + (f"@{self.layer}" if self.layer else "")

    def check(self) -> None:
        def bad(name: str, expected: str) -> ConfigError:
            return ConfigError(f"curvature.{name}", f"expected {expected}, got {getattr(self, name)!r}")

        if self.loss not in LOSSES:
            raise bad("loss", " or ".join(LOSSES))
        for name, lo, hi in (("top_k", 1, 1000), ("probes", 0, MAX_PRODUCTS), ("density_probes", 0, 1000),
                             ("density_steps", 1, 1000), ("images", 0, 10**7), ("max_iter", 1, 10_000),
                             ("seed", 0, 2**31 - 1), ("batch_size", 1, 65536)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise bad(name, f"a whole number from {lo} to {hi:,}")
        if self.top_k > self.max_iter:
            raise bad("top_k", f"at most max_iter ({self.max_iter})")
        if not (isinstance(self.tol, float) and 0 < self.tol < 1):
            raise bad("tol", "a number between 0 and 1")
        if self.density_probes * self.density_steps + self.probes + self.max_iter > MAX_PRODUCTS:
            raise ConfigError("curvature", f"more than {MAX_PRODUCTS:,} Hessian-vector products; fewer probes or steps")
