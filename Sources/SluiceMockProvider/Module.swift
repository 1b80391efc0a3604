// Module SluiceMockProvider.
