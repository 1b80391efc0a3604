// Module SluiceProviders.
