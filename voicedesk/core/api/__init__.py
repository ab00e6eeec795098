"""The REST API's parts that know no app: CSV export, filters, parameters, pagination, errors."""
