"""The stages of an experiment: pretrain (optional), embed, fine-tune (the attack), restore."""
