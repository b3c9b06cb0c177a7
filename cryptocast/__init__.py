"""cryptocast: daily pipeline forecasting the SOL price 10 days ahead."""
