// Starts `netdsl lsp` (stdio) for .net files; everything else the server does.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate() {
  const [command, ...args] = vscode.workspace.getConfiguration("netdsl").get("command");
  client = new LanguageClient("netdsl", "netdsl", { command, args },
                              { documentSelector: [{ language: "netdsl" }] });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
