"""The train layer: the model, SAM, the plain oracle trainer, the stacked engine, the store and the train job."""
