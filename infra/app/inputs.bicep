// Stops a deployment whose parameters do not fit together, before anything is created: main.bicep
// passes what is wrong (inputProblems, one message per problem) or '' when nothing is, and ARM
// refuses any value but '' with an error that quotes it, such as "The provided value 'GRAPH_AUTH=
// client_secret needs GRAPH_CLIENT_SECRET: ...' for the template parameter 'problems' is not
// valid". The resource group depends on this module, so nothing else is deployed first. (Bicep's
// fail() would say it directly, but the parser checkov uses cannot read it yet.)
targetScope = 'subscription'

@allowed([
  ''
])
@description('What is wrong with the deployment\'s parameters; empty when nothing is.')
param problems string

output checked bool = empty(problems)
