"""The train layer: the model, SAM, the plain oracle trainer, the stacked engine, the store and the train job.

Models trained together, outermost first:
- pack: an experiment's cells that share the values of every axis but those config key `train.pack` names
  (`genboost.config.packing`, `Experiment.pack_cells`); the values of its free axes name its jobs.
- part: one train job's share of a pack, `<i>of<n>` (`part=` in job paths): packs split to fill the cores.
- block: the cells of a job that the engine trains at once, stacked (`train.blocks`, `engine.train_blocks`).
Going on from a shorter run (`genboost.train.resume`):
- continues: config key; the experiment whose runs an experiment trains longer, the only one it goes on from.
- shorter run: the same cell at fewer epochs in the continued experiment; the cell starts from its end state.
- continued: a cell that a longer run goes on from; its job keeps the cell's end state in the store.
"""
