"""Curvature of the loss: Hessian-vector products, top eigenvalues (Lanczos), trace (Hutchinson) and
the eigenvalue density (stochastic Lanczos quadrature), of the clean or the trigger loss, whole model
or per layer; no Qt."""
