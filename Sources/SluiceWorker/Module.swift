// Module SluiceWorker.
