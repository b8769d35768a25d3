"""Kehu (客户): an intranet CRM for a Chinese company's sales and service staff."""
