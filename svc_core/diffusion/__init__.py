"""so-vits-svc 4.1 shallow diffusion (Diff-SVC style Unit2Mel + GaussianDiffusion) and its samplers."""
