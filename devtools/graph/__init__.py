"""The Microsoft Graph stand-in's parts; devtools.graph_standin is the public face."""
