"""Numbers shared by every stage of the so-vits-svc 4.x pipeline (units in the names or comments)."""

MODEL_SAMPLE_RATE = 44100  # Hz, so-vits-svc 4.x synthesizer output rate
HOP_LENGTH = 512  # samples per synthesizer frame at MODEL_SAMPLE_RATE (86.13 frames/s)

ENCODER_SAMPLE_RATE = 16000  # Hz, every content encoder reads 16 kHz audio
ENCODER_HOP_LENGTH = 320  # samples per content frame at ENCODER_SAMPLE_RATE (50 frames/s)

F0_MIN = 50.0  # Hz, lowest pitch the predictors report and coarse f0 resolves
F0_MAX = 1100.0  # Hz, highest pitch the predictors report and coarse f0 resolves

DEFAULT_SEED = 52468  # upstream re-seeds the torch RNG with this on every infer() call
