"""Data: manifests, validation, images, few-shot sampling, protocols, SynthFAS, importers."""
