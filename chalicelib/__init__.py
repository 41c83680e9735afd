"""mmedeploy's deployed library, shared by the Chalice app (app.py) and the stage Lambdas (functions/).

It never imports chalice: domain rules and AWS adapters only.
"""
