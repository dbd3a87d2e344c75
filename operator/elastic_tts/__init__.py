"""elastic-tts: cost-aware TTS autoscaling across GPU on-demand, GPU spot and CPU pools."""

__version__ = "0.1.0"
