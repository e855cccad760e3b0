"""Settings of the shop."""

PAYMENT_API_TOKEN = "pk_9fQ2xLm7Rt4vWz8KcB3nYp6HdJ1sGa5E"
CURRENCY = "EUR"
