"""rec_utils: data, protocols, metrics and models for the LLM-enhanced sequential
recommendation study (Boz et al., "Improving Sequential Recommendations with LLMs",
arXiv 2402.01339; RecSys'23 short version)."""
from .utils import offline_mode

offline_mode()  # offline by default: no model hub is ever contacted

__version__ = "0.1.0"
