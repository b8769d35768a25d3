"""Search everything (搜索): the box in every page's header with its dropdown, the /search page, and the admin's
view of whether the search indexes are in step with the database."""
