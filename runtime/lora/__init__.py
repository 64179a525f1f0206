"""Multi-LoRA serving: PEFT adapters (`adapter`) and the device pool they are paged into
(`pool`); the model applies them per token segment (`sglc.runtime.models.lora`)."""
